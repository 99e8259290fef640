"""The query tower as int8 ONNX: what the online engine runs to embed a query.

A sentence-transformers query tower (BERT-style transformer, mean pooling, normalisation) is exported to ONNX
with pooling and normalisation inside the graph, then its weight matrices are quantised to int8 per channel
(``onnxruntime.quantization.quantize_dynamic``). The first layer and the feed-forward output projections stay
in float: MiniLM's activations there have outliers that int8 weights amplify (cosine with PyTorch drops from
0.99+ to ~0.96 when they are quantised too). The export is checked against PyTorch on probe texts; below
:data:`MIN_COSINE` the float ONNX graph is kept instead, which is still several times faster than PyTorch.

The result is a folder of plain files: ``model.onnx``, the tokenizer files and ``query_tower.json`` (format,
what was quantised, the cosine measured, the weights' checksum). ``shoprank train search`` writes it into the
bundle (``query_onnx/``); a bundle without one gets it exported once on first load into the shop's cache,
keyed by the tower's weights. Anything missing (``onnx`` not installed, an export error) leaves the PyTorch
tower in charge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("shoprank.encoders")

FORMAT = 1
META = "query_tower.json"
MODEL = "model.onnx"
MIN_COSINE = 0.99
"""Lowest cosine between the int8 and the PyTorch embedding of any probe text for int8 to be used."""
PROBE_TEXTS = (
    "cordless drill", "1/2 in. copper pipe fittings", "outdoor led flood light motion sensor", "toilet",
    "kitchen faucet with pull down sprayer brushed nickel", "2x4x8 pressure treated lumber", "wii u controller",
    "ps4 racing game", "white interior door 30 in.", "garden hose 50 ft", "dewalt 20v max battery 5ah",
    "roof shingles", "ceiling fan with light remote", "paint roller", "vinyl plank flooring gray oak",
    "bathroom vanity 36 inch with top", "zelda", "wireless gaming headset", "a", "ge",
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class TowerInfo:
    """What ``query_tower.json`` records."""

    format: int
    quantized: bool  # int8 weights (else the float graph)
    min_cosine: float  # against PyTorch on the probe texts, of the graph kept
    int8_min_cosine: float | None  # of the int8 graph, whether kept or not
    max_length: int
    weights_sha256: str  # of the PyTorch tower's weights file: a cache key


def weights_checksum(tower_dir: Path) -> str:
    """sha256 of the tower's weights (``model.safetensors``, else every file), the cache key of its export."""
    files = [tower_dir / "model.safetensors"] if (tower_dir / "model.safetensors").is_file() else \
        sorted(p for p in tower_dir.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ImportError("exporting the query tower needs onnx and onnxruntime: pip install onnx onnxruntime") \
            from None


def trace_pooled(model: Any, path: Path, example_text: str) -> None:
    """Trace a sentence-transformers model's pooled, normalised embedding into the ONNX file ``path``, with
    dynamic batch and length axes (the step both towers' exports share)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, st: Any) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.st(features)["sentence_embedding"]  # (b, d), normalised

    example = model.tokenizer([example_text, "x"], padding=True, return_tensors="pt")
    if "token_type_ids" not in example:
        example["token_type_ids"] = torch.zeros_like(example["input_ids"])
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
        torch.onnx.export(Pooled(model), tuple(example[n] for n in _INPUTS), str(path), dynamo=False,
                          input_names=list(_INPUTS), output_names=["embedding"],
                          dynamic_axes={**axes, "embedding": {0: "batch"}}, opset_version=17)


def export_query_tower(tower_dir: Path, out: Path, max_length: int, probe: Sequence[str] = PROBE_TEXTS,
                       min_cosine: float = MIN_COSINE) -> TowerInfo:
    """Export the sentence-transformers folder ``tower_dir`` to ``out`` (a new folder), int8 where it holds up."""
    _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    from shoprank.encoders.text import offline

    offline()
    model = SentenceTransformer(str(tower_dir), device="cpu")
    model.max_seq_length = max_length
    model.eval()
    tokenizer = model.tokenizer
    out.mkdir(parents=True, exist_ok=False)
    with tempfile.TemporaryDirectory() as tmp:
        float_file = Path(tmp) / "float.onnx"
        int8_file = Path(tmp) / "int8.onnx"
        trace_pooled(model, float_file, "a query")
        quantize_dynamic(str(float_file), str(int8_file), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=_float_nodes(float_file))
        reference = model.encode(list(probe), convert_to_numpy=True, normalize_embeddings=True)
        tokenizer.save_pretrained(str(out))
        float_cos = _min_cosine(OnnxQueryTower(float_file, out, max_length), probe, reference)
        int8_cos = _min_cosine(OnnxQueryTower(int8_file, out, max_length), probe, reference)
        quantized = int8_cos >= min_cosine
        shutil.copyfile(int8_file if quantized else float_file, out / MODEL)
    if not quantized:
        log.warning("int8 query tower: cosine %.4f with PyTorch < %.2f; serving the float ONNX graph", int8_cos,
                    min_cosine)
    info = TowerInfo(FORMAT, quantized, round(int8_cos if quantized else float_cos, 5), round(int8_cos, 5),
                     max_length, weights_checksum(tower_dir))
    (out / META).write_text(json.dumps(asdict(info), indent=2))
    return info


def _float_nodes(model_file: Path) -> list[str]:
    """MatMuls kept in float: the first transformer layer's and every feed-forward output projection."""
    import onnx

    graph = onnx.load(str(model_file)).graph
    keep = []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        name = node.name
        if "/layer.0/" in name or ("/output/dense/" in name and "/attention/" not in name):
            keep.append(name)
    return keep


def _min_cosine(tower: OnnxQueryTower, texts: Sequence[str], reference: np.ndarray) -> float:
    got = tower.encode_queries(texts)
    return float(np.min(np.sum(got * reference, axis=1)))


class OnnxQueryTower:
    """Normalised query embeddings from an exported tower; one thread per call (the server runs calls side by
    side)."""

    name = "onnx-query"

    def __init__(self, model_file: str | Path, tokenizer_dir: str | Path, max_length: int, threads: int = 1) -> None:
        import onnxruntime as ort

        from shoprank.encoders.text import offline

        offline()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = _FastTokenizer.load(Path(tokenizer_dir), max_length)
        self.max_length = max_length

    @classmethod
    def load(cls, folder: Path) -> OnnxQueryTower:
        info = read_info(folder)
        return cls(folder / MODEL, folder, info.max_length)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            batch = self.tokenizer(list(texts[start : start + 64]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            ids = batch["input_ids"].astype(np.int64)
            feed = {"input_ids": ids, "attention_mask": batch["attention_mask"].astype(np.int64),
                    "token_type_ids": batch.get("token_type_ids", np.zeros_like(ids)).astype(np.int64)}
            out.append(self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0])  # (b, d)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


class _FastTokenizer:
    """The export's ``tokenizer.json`` run by the ``tokenizers`` library alone, so a process that only embeds
    queries never imports transformers or PyTorch; called like a Hugging Face tokenizer (``return_tensors="np"``).
    Folders without a ``tokenizer.json`` use ``AutoTokenizer``."""

    def __init__(self, tokenizer: Any, do_lower_case: bool) -> None:
        self.tokenizer = tokenizer
        self.do_lower_case = do_lower_case

    @classmethod
    def load(cls, folder: Path, max_length: int) -> Any:
        config_file = folder / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        if not (folder / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(folder))
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        pad = str(config.get("pad_token") or "[PAD]")
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad) or 0, pad_token=pad)
        return cls(tokenizer, bool(config.get("do_lower_case", False)))

    def __call__(self, texts: list[str], **_: Any) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        return {"input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64)}


def read_info(folder: Path) -> TowerInfo:
    data = json.loads((folder / META).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{folder / META} has format {data.get('format')!r}, expected {FORMAT}")
    return TowerInfo(**data)


_export_lock = threading.Lock()


def cached_export(tower_dir: Path, cache_dir: Path, max_length: int) -> Path:
    """The export of ``tower_dir`` under ``cache_dir`` (made once, then reused): ``query-onnx-<weights>-L<n>``."""
    key = weights_checksum(tower_dir)[:16]
    folder = cache_dir / f"query-onnx-{key}-L{max_length}"
    with _export_lock:
        if (folder / META).is_file():
            return folder
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = cache_dir / f".{folder.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            export_query_tower(tower_dir, staging, max_length)
            if not folder.exists():  # another process may have finished first: keep its export
                os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder
