"""A shallower document tower distilled from the full one: a large catalogue embedded several times faster.

The student is the teacher with some of its transformer layers kept (``layers``, e.g. the first and the last of
MiniLM's six) and nothing else changed: same tokenizer, same embeddings, same width, same pooling. It is trained
to reproduce the teacher's normalised product vectors (loss: 1 - cosine) on a sample of the shop's own product
texts, so its vectors live in the teacher's space and the query tower (fine-tuned against the teacher's product
vectors, or the untuned base) is used unchanged. No labels are involved: the teacher's vectors are the targets.
A held-out share of the texts is the validation set (mean cosine to the teacher); the usual controls of
:class:`~shoprank.training.loop.TrainConfig` apply (early stopping keeps the best epoch).

The student is saved as a plain sentence-transformers folder, so :func:`shoprank.encoders.onnx_docs.cached_export`
makes its fused int8 ONNX tower like any other.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.training.loop import TrainConfig, fit

META = "distilled.json"


@dataclass
class DistilConfig:
    """What to keep of the teacher and how to train the student."""

    layers: tuple[int, ...] = (0, 5)  # teacher layers the student keeps, in order
    max_texts: int = 20_000  # product texts sampled to train on (the rest of the catalogue is not needed)
    valid_share: float = 0.05
    max_length: int = 32
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, batch_size=64, learning_rate=1e-4,
                                                                   dropout=0.0, warmup_ratio=0.05, patience=1))

    def __post_init__(self) -> None:
        if not self.layers or len(set(self.layers)) != len(self.layers) or min(self.layers) < 0:
            raise ValueError(f"layers must be distinct layer numbers (0 is the first), got {self.layers!r}")
        if not 0 < self.valid_share < 1:
            raise ValueError("valid_share must be in (0, 1)")
        if self.max_texts < 20:
            raise ValueError("max_texts must be at least 20")


@dataclass
class DistilReport:
    """What distillation did, recorded in the student's folder (``distilled.json``)."""

    teacher: str
    layers: list[int]
    teacher_layers: int
    texts: int
    valid_texts: int
    cosine_before: float  # mean cosine to the teacher on the validation texts, the student untrained
    cosine: float  # after training (the best epoch)
    cosine_min: float
    epochs_run: int
    best_epoch: int
    seconds: float
    train: dict[str, Any]


def parse_layers(text: str) -> tuple[int, ...]:
    """``"0,5"`` -> (0, 5): the command-line form of :attr:`DistilConfig.layers`."""
    import argparse

    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"layers are comma-separated numbers such as 0,5; got {text!r}") from None


def make_student(teacher_dir: Path, layers: Sequence[int], max_length: int) -> Any:
    """The teacher's sentence-transformers model with only ``layers`` of its transformer kept."""
    import torch
    from sentence_transformers import SentenceTransformer

    from shoprank.encoders.text import offline

    offline()
    model = SentenceTransformer(str(teacher_dir), device="cpu")
    model.max_seq_length = max_length
    bert = model[0].auto_model
    blocks = bert.encoder.layer
    if max(layers) >= len(blocks):
        raise ValueError(f"the teacher has {len(blocks)} layers (0-{len(blocks) - 1}); cannot keep {list(layers)}")
    bert.encoder.layer = torch.nn.ModuleList([blocks[i] for i in layers])
    bert.config.num_hidden_layers = len(layers)
    return model


def sample_rows(n_texts: int, config: DistilConfig) -> tuple[list[int], list[int]]:
    """The rows of ``n_texts`` texts distillation reads: (validation rows, training rows), seed
    ``config.train.seed``; the other rows are never seen."""
    rng = random.Random(config.train.seed)
    rows = sorted(rng.sample(range(n_texts), min(config.max_texts, n_texts)))
    rng.shuffle(rows)
    n_valid = max(10, int(len(rows) * config.valid_share))
    return rows[:n_valid], rows[n_valid:]


def distil_doc_tower(teacher_dir: Path, texts: Sequence[str], out: Path, config: DistilConfig | None = None,
                     teacher_vectors: np.ndarray | None = None, progress: bool = True) -> DistilReport:
    """Train a student of ``teacher_dir`` on ``texts`` (a sample of ``config.max_texts`` of them, seed
    ``config.train.seed``) and save it to ``out`` (a new folder). ``teacher_vectors`` (one row per text, as the
    teacher's ``encode_docs`` makes them) saves embedding them again."""
    import time

    import torch

    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.training.loop import seed_everything

    config = config or DistilConfig()
    began = time.perf_counter()
    texts = [t if t.strip() else " " for t in texts]
    if len(texts) < 20:
        raise ValueError(f"distillation needs at least 20 product texts, got {len(texts)}")
    valid_rows, train_rows = sample_rows(len(texts), config)
    rows = valid_rows + train_rows
    if teacher_vectors is None:
        teacher = BiEncoder.load(teacher_dir, max_length=config.max_length)
        targets = teacher.encode_docs([texts[r] for r in rows], progress=progress)
        target_of = dict(zip(rows, targets, strict=True))
    else:
        if len(teacher_vectors) != len(texts):
            raise ValueError(f"{len(teacher_vectors)} teacher vectors for {len(texts)} texts")
        target_of = {r: teacher_vectors[r] for r in rows}
    seed_everything(config.train.seed)
    student = make_student(Path(teacher_dir), config.layers, config.max_length)
    teacher_layers = int(json.loads((Path(teacher_dir) / "config.json").read_text())["num_hidden_layers"])
    valid_texts = [texts[r] for r in valid_rows]
    valid_targets = np.stack([target_of[r] for r in valid_rows])

    def cosines() -> np.ndarray:
        with torch.no_grad():
            vectors = student.encode(valid_texts, batch_size=256, convert_to_numpy=True, normalize_embeddings=True)
        return np.sum(vectors * valid_targets, axis=1)

    before = float(cosines().mean())
    lengths = {r: len(texts[r]) for r in train_rows}
    batch = config.train.batch_size

    def batches(epoch: int) -> list[list[int]]:
        """Texts of similar length together (little padding), the batches in random order."""
        order = sorted(train_rows, key=lambda r: (lengths[r], r))
        chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
        random.Random(config.train.seed + epoch).shuffle(chunks)
        return chunks

    def loss_step(idx: list[int]) -> Any:
        features = student.preprocess([texts[r] for r in idx])
        vectors = torch.nn.functional.normalize(student(features)["sentence_embedding"], dim=-1)  # (b, d)
        target = torch.from_numpy(np.stack([target_of[r] for r in idx])).float()  # (b, d)
        return (1.0 - (vectors * target).sum(-1)).mean()

    result = fit(student, batches, loss_step, config.train, steps_per_epoch=len(batches(0)),
                 evaluate=lambda: float(cosines().mean()), metric="val/cosine", eval_before=True, desc="distilling",
                 progress=progress)  # eval_before: a student never ends further from the teacher than it began
    final = cosines()
    out.mkdir(parents=True, exist_ok=False)
    student.save(str(out), safe_serialization=True)
    report = DistilReport(str(teacher_dir), list(config.layers), teacher_layers, len(train_rows), len(valid_rows),
                          round(before, 5), round(float(final.mean()), 5), round(float(final.min()), 5),
                          result.epochs_run, result.best_epoch, round(time.perf_counter() - began, 1),
                          config.train.to_dict())
    (out / META).write_text(json.dumps(asdict(report), indent=2))
    return report


def read_report(folder: Path) -> DistilReport | None:
    """The distillation report of a student folder, or None for any other model folder."""
    path = Path(folder) / META
    return DistilReport(**json.loads(path.read_text())) if path.is_file() else None
