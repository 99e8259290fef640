"""The document tower as fused int8 ONNX: how a catalogue is embedded in bulk.

A sentence-transformers tower is exported with eager attention (so onnxruntime's transformer optimizer fuses
each layer's attention, skip-layer-norms and GELU into single kernels), then its feed-forward input and
attention output projections are quantised to int8 per channel. The first layer and the feed-forward output
projections stay in float, as in the query tower (:mod:`shoprank.encoders.onnx_tower`): MiniLM's activations
there have outliers that int8 weights amplify. The export is checked against PyTorch on probe product texts;
below :data:`MIN_COSINE` the fused float graph is kept instead (still about twice PyTorch's speed).

:class:`OnnxDocTower` embeds a list of texts the cheap way: one fast tokenizer pass without padding, the texts
sorted by token length and padded per batch only to the longest in that batch (sequence bucketing), every
batch written in place into one output array, intra-op threads = the cores the caller allows.

The export is a folder of plain files (``model.onnx``, tokenizer files, ``doc_tower.json``) cached per weights
checksum and max length (:func:`cached_export`); ``BiEncoder.encode_docs`` uses it wherever the tower came from
a folder (the base model, a bundle's fine-tuned tower) and falls back to PyTorch on any failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("shoprank.encoders")

FORMAT = 1
META = "doc_tower.json"
MODEL = "model.onnx"
MIN_COSINE = 0.99
"""Lowest cosine between the int8 and the PyTorch embedding of any probe text for int8 to be used."""
MIN_COSINE_ALL = 0.995
"""The same for every matrix product in int8 (the first layer and the feed-forward outputs too): a margin over
:data:`MIN_COSINE`, since 20 probe texts see less than a catalogue does (MiniLM-L6 itself reads 0.9905 on them
but 0.9865 over 2,000 Home Depot titles, so it keeps the partial graph; a 2-layer distilled tower reads 0.9970
and 0.9966, and runs about 1.5x faster in full int8)."""
BATCH = 128  # texts per onnxruntime call (after sorting by length, so little padding)
PROBE_TEXTS = (
    "Simpson Strong-Tie 12-Gauge Angle", "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood and Concrete "
    "Coating", "Delta Vero 1-Handle Shower Only Faucet Trim Kit in Chrome (Valve Not Included)",
    "Whirlpool 1.9 cu. ft. Over the Range Convection Microwave in Stainless Steel with Sensor Cooking",
    "Quikrete 80 lb. Concrete Mix", "Hampton Bay 52 in. Ceiling Fan | Hampton Bay | Lighting > Ceiling Fans",
    "DEWALT 20-Volt MAX Lithium-Ion Cordless Drill/Driver Kit", "2 in. x 4 in. x 8 ft. Pressure-Treated Lumber",
    "Rheem Performance 40 Gal. Tall 6 Year 36,000 BTU Natural Gas Water Heater", "Leviton 15 Amp Outlet, White",
    "The Legend of Zelda: Breath of the Wild - Nintendo Switch", "Wireless gaming headset with 7.1 surround sound",
    "MOEN Banbury 2-Handle Low-Arc Bathroom Faucet in Chrome", "GE 24 in. Top Control Dishwasher", "Paint roller",
    "LG Electronics 7.3 cu. ft. Electric Dryer with Steam in White | LG | Appliances > Laundry | 27 in. wide, "
    "front control, sensor dry, 9 drying cycles, ENERGY STAR certified, reversible door",
    "a", "USB-C charging cable 6 ft braided nylon", "Vigoro 2 cu. ft. Brown Mulch", "ge",
)


@dataclass
class DocTowerInfo:
    """What ``doc_tower.json`` records."""

    format: int
    quantized: bool  # int8 weights (else the fused float graph)
    min_cosine: float  # against PyTorch on the probe texts, of the graph kept
    int8_min_cosine: float | None  # of the int8 graph, whether kept or not
    max_length: int
    weights_sha256: str  # of the PyTorch tower's weights: the cache key
    int8: str = "partial"  # which matrix products are int8: "all", "partial" (see _float_nodes) or "none"
    int8_all_min_cosine: float | None = None  # of the all-int8 graph, whether kept or not


def default_threads() -> int:
    """Intra-op threads: PyTorch's setting when the process made one (the server caps it), else every core."""
    if "torch" in sys.modules:
        return max(1, int(sys.modules["torch"].get_num_threads()))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def export_doc_tower(tower_dir: Path, out: Path, max_length: int, probe: Sequence[str] = PROBE_TEXTS,
                     min_cosine: float = MIN_COSINE, min_cosine_all: float = MIN_COSINE_ALL) -> DocTowerInfo:
    """Export the sentence-transformers folder ``tower_dir`` to ``out`` (a new folder): fused, int8 where it
    holds up against PyTorch on ``probe``: every matrix product at ``min_cosine_all``, else all but the first
    layer's and the feed-forward outputs at ``min_cosine``, else none."""
    from shoprank.encoders.onnx_tower import _require_onnx, trace_pooled, weights_checksum

    _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from sentence_transformers import SentenceTransformer

    from shoprank.encoders.text import offline

    offline()
    model = SentenceTransformer(str(tower_dir), device="cpu", model_kwargs={"attn_implementation": "eager"})
    model.max_seq_length = max_length
    model.eval()
    tokenizer = model.tokenizer
    config = model[0].auto_model.config
    out.mkdir(parents=True, exist_ok=False)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        fused = Path(tmp) / "fused.onnx"
        int8 = Path(tmp) / "int8.onnx"
        int8_all = Path(tmp) / "int8-all.onnx"
        trace_pooled(model, raw, "a product title")
        logging.getLogger("onnxruntime").setLevel(logging.ERROR)
        optimizer.optimize_model(str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                                 hidden_size=int(config.hidden_size), opt_level=1).save_model_to_file(str(fused))
        for target, exclude in ((int8, _float_nodes(fused)), (int8_all, [])):
            quantize_dynamic(str(fused), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude,
                             extra_options={"DefaultTensorType": 1})  # fused ops have no inferred type: float
        reference = model.encode(list(probe), convert_to_numpy=True, normalize_embeddings=True)
        tokenizer.save_pretrained(str(out))
        float_cos = _min_cosine(OnnxDocTower(fused, out, max_length), probe, reference)
        int8_cos = _min_cosine(OnnxDocTower(int8, out, max_length), probe, reference)
        all_cos = _min_cosine(OnnxDocTower(int8_all, out, max_length), probe, reference)
        if all_cos >= max(min_cosine, min_cosine_all):
            level, kept, cos = "all", int8_all, all_cos
        elif int8_cos >= min_cosine:
            level, kept, cos = "partial", int8, int8_cos
        else:
            level, kept, cos = "none", fused, float_cos
        shutil.copyfile(kept, out / MODEL)
    if level == "none":
        log.warning("int8 document tower: cosine %.4f with PyTorch < %.2f; using the fused float graph", int8_cos,
                    min_cosine)
    info = DocTowerInfo(FORMAT, level != "none", round(cos, 5), round(int8_cos, 5), max_length,
                        weights_checksum(tower_dir), level, round(all_cos, 5))
    (out / META).write_text(json.dumps(asdict(info), indent=2))
    return info


def _float_nodes(model_file: Path) -> list[str]:
    """MatMuls kept in float in the fused graph: the first layer's and every feed-forward output projection
    (the fused attention ops are not quantised at all)."""
    import onnx

    keep = []
    for node in onnx.load(str(model_file)).graph.node:
        if node.op_type == "MatMul" and ("/layer.0/" in node.name or
                                         ("/output/dense/" in node.name and "/attention/" not in node.name)):
            keep.append(node.name)
    return keep


def _min_cosine(tower: OnnxDocTower, texts: Sequence[str], reference: np.ndarray) -> float:
    return float(np.min(np.sum(tower.encode_docs(texts) * reference, axis=1)))


class OnnxDocTower:
    """Normalised embeddings of many texts from an exported tower: length-bucketed batches, all threads."""

    name = "onnx-docs"

    def __init__(self, model_file: str | Path, tokenizer_dir: str | Path, max_length: int,
                 threads: int | None = None, batch_size: int = BATCH) -> None:
        import onnxruntime as ort

        from shoprank.encoders.onnx_tower import _FastTokenizer
        from shoprank.encoders.text import offline

        offline()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting: a shared CPU
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        tokenizer = _FastTokenizer.load(Path(tokenizer_dir), max_length)
        if not isinstance(tokenizer, _FastTokenizer):
            raise ValueError(f"{tokenizer_dir} has no tokenizer.json (the document tower needs a fast tokenizer)")
        tokenizer.tokenizer.no_padding()  # padded per batch below
        self.tokenizer = tokenizer.tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.bucket = True  # sort by token length (off: input order, for the benchmark's comparison)

    @classmethod
    def load(cls, folder: Path, threads: int | None = None) -> OnnxDocTower:
        return cls(folder / MODEL, folder, read_info(folder).max_length, threads)

    def encode_docs(self, texts: Sequence[str], progress: bool = False,
                    on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised, in the order of ``texts``. ``on_batch(n)`` after each
        batch of ``n`` texts (progress reports)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not len(texts):
            return out
        encodings = self.tokenizer.encode_batch([t if t else " " for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
        order = np.argsort(lengths, kind="stable") if self.bucket else np.arange(len(texts))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), np.int64)  # (b, t), 0 = [PAD]
            mask = np.zeros((len(rows), width), np.int64)
            for j, row in enumerate(rows):
                n = int(lengths[row])
                ids[j, :n] = encodings[row].ids
                mask[j, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]  # (b, d)
            if bar is not None:
                bar.update(len(rows))
            if on_batch is not None:
                on_batch(len(rows))
        if bar is not None:
            bar.close()
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_docs(texts)


def read_info(folder: Path) -> DocTowerInfo:
    data = json.loads((folder / META).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{folder / META} has format {data.get('format')!r}, expected {FORMAT}")
    return DocTowerInfo(**data)


def cache_root() -> Path:
    """Where exports of towers that live outside a shop (the base model) are kept: ``$SHOPRANK_CACHE``, else
    ``~/.cache/shoprank``."""
    env = os.environ.get("SHOPRANK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "shoprank"


_export_lock = threading.Lock()


def export_folder(tower_dir: Path, cache_dir: Path, max_length: int) -> Path:
    """The folder :func:`cached_export` uses for ``tower_dir`` (it may not exist yet)."""
    from shoprank.encoders.onnx_tower import weights_checksum

    return cache_dir / f"doc-onnx-{weights_checksum(tower_dir)[:16]}-L{max_length}"


def cached_export(tower_dir: Path, cache_dir: Path | None, max_length: int) -> Path:
    """The export of ``tower_dir`` under ``cache_dir`` (made once, then reused): ``doc-onnx-<weights>-L<n>``."""
    cache_dir = cache_dir or cache_root()
    folder = export_folder(tower_dir, cache_dir, max_length)
    with _export_lock:
        if (folder / META).is_file():
            return folder
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = cache_dir / f".{folder.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            export_doc_tower(tower_dir, staging, max_length)
            if not folder.exists():  # another process may have finished first: keep its export
                os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


EXPORT_MIN = 1000
"""Texts one call must embed before a tower without a cached export gets one made (an export costs as much as
embedding a few thousand texts; a handful of upserted products are embedded by PyTorch meanwhile)."""
BACKEND_ENV = "SHOPRANK_DOC_TOWER"  # "torch": never use the ONNX document tower


def weights_fingerprint(model: Any) -> tuple[float, ...]:
    """A cheap summary of a PyTorch model's weights (a strided sum per tensor): changes when training moves any
    of them, so vectors of a tower tuned in memory never come from the export of the folder it was loaded from."""
    import torch

    with torch.no_grad():
        return tuple(float(p.detach().reshape(-1)[::4099].double().sum()) for p in model.parameters())


class FastDocs:
    """The ONNX document tower of a PyTorch tower loaded from ``source``, made or found on first use.

    :meth:`encode` returns None where PyTorch must do the job: the weights changed since loading, the export
    failed, a small call with no export cached yet, or ``$SHOPRANK_DOC_TOWER=torch``."""

    def __init__(self, source: Path, model: Any, cache_dir: Path | None = None) -> None:
        self.source = Path(source)
        self.model = model
        self.cache_dir = cache_dir
        self.fingerprint = weights_fingerprint(model)
        self.towers: dict[int, OnnxDocTower] = {}
        self.failed: str | None = None
        self._folders: dict[int, Path] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """A copy (``copy.deepcopy`` of a bi-encoder before fine-tuning it) keeps the weights' fingerprint and
        the export folders; its lock is its own and its ONNX sessions are opened again on first use."""
        state = dict(self.__dict__)
        state["towers"], state["_lock"] = {}, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def tower(self, n_texts: int) -> OnnxDocTower | None:
        if self.failed or os.environ.get(BACKEND_ENV, "").lower() == "torch":
            return None
        if weights_fingerprint(self.model) != self.fingerprint:
            return None  # tuned in memory since it was loaded: the export would be of other weights
        length = int(self.model.max_seq_length)
        with self._lock:
            if length in self.towers:
                return self.towers[length]
            cache = self.cache_dir or cache_root()
            try:
                if length not in self._folders:
                    self._folders[length] = export_folder(self.source, cache, length)
                if not (self._folders[length] / META).is_file() and n_texts < EXPORT_MIN:
                    return None
                folder = cached_export(self.source, cache, length)
                self.towers[length] = OnnxDocTower.load(folder)
            except Exception as exc:  # noqa: BLE001 - any failure leaves PyTorch embedding the products
                self.failed = f"{type(exc).__name__}: {exc}"
                log.warning("ONNX document tower unavailable (%s); products are embedded with PyTorch", self.failed)
                return None
            info = read_info(folder)
            log.info("document tower: %s ONNX (cosine with PyTorch >= %.4f), %s", "int8" if info.quantized else
                     "float", info.min_cosine, folder)
            return self.towers[length]

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray | None:
        tower = self.tower(len(texts))
        return None if tower is None else tower.encode_docs(texts, progress)
