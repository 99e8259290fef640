"""The fine-tuned sentiment classifier: the pretrained encoder (MiniLM) with a three-way head, or a five-way
head over star ratings (1-5) whose probabilities are summed into the three classes (1-2 negative, 3
neutral, 4-5 positive): the stars tell a 2 from a 1 and a 4 from a 5, which the three classes do not.

The review vector the head reads is the mean of the encoder's token vectors (``pooling="mean"``, the default:
all-MiniLM-L6-v2 was trained to mean-pool, and its [CLS] pooler was never trained for it) or, in bundles
written before pooling was recorded, the [CLS] pooler (``pooling="cls"``).

Trained with (optionally class-weighted) cross-entropy through the shared controls of
:mod:`shoprank.training.loop` (AdamW, weight decay, dropout, warm-up, frozen layers, early stopping on validation
macro-F1, fixed seed). Batches are grouped by length so that short reviews are not padded to the longest one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.sentiment.labels import LABELS, STARS, stars_to_labels
from shoprank.training.loop import TrainConfig, fit, freeze_transformer, set_dropout

POOLINGS = ("mean", "cls")


class FineTunedClassifier:
    """``predict_proba(texts)`` -> (n, 3) probabilities over :data:`LABELS`; ``classes`` are the head's outputs
    seen in training (class indices, or star indices for a star head)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 128, batch_size: int = 64,
                 classes: Sequence[int] = (0, 1, 2), pooling: str = "mean") -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {max_length}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.classes = sorted(set(int(c) for c in classes))

    @property
    def name(self) -> str:
        return "minilm-fine-tuned-stars" if self.outputs == STARS else "minilm-fine-tuned"

    @property
    def outputs(self) -> int:
        """3: the classes; 5: the stars."""
        return int(self.model.config.num_labels)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, max_length: int = 128,
                        dropout: float = 0.1, stars: bool = False, pooling: str = "mean") -> FineTunedClassifier:
        """A fresh three-way head (five-way over the stars with ``stars``) on a local pretrained encoder
        (default all-MiniLM-L6-v2)."""
        from shoprank.encoders.text import offline, resolve_model_path

        offline()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = str(resolve_model_path(path))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized head" is expected here
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=STARS if stars else len(LABELS), hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout,
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(folder), max_length, pooling=pooling)

    @classmethod
    def load(cls, folder: Path, max_length: int = 128, classes: Sequence[int] = (0, 1, 2),
             pooling: str = "cls") -> FineTunedClassifier:
        from shoprank.encoders.text import offline

        offline()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(str(folder)), max_length, classes=classes, pooling=pooling)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))

    def _features(self, texts: Sequence[str]) -> Any:
        return self.tokenizer([t or " " for t in texts], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")

    def logits(self, features: Any) -> Any:
        """The head's outputs (b, outputs) for tokenised ``features``, through the chosen pooling."""
        if self.pooling == "cls":
            return self.model(**features).logits
        model = self.model
        hidden = getattr(model, model.base_model_prefix)(**features).last_hidden_state  # (b, t, d)
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return model.classifier(model.dropout(pooled))

    def _mask(self) -> np.ndarray:
        mask = np.full(self.outputs, -np.inf, np.float32)
        mask[self.classes] = 0.0
        return mask

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Probabilities (n, 3); classes never seen in training get 0."""
        import torch
        from tqdm.auto import tqdm

        order = np.argsort([len(t) for t in texts], kind="stable")
        logits = np.zeros((len(texts), self.outputs), np.float32)
        self.model.eval()
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), desc="sentiment", disable=not progress,
                              leave=False):
                idx = order[start : start + self.batch_size]
                logits[idx] = self.logits(self._features([texts[i] for i in idx])).float().numpy()
        logits = logits + self._mask()
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return stars_to_labels(probs) if self.outputs == STARS else probs


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Shuffled batches of indices of similar length: shuffle, sort within pools of ``pool`` batches, shuffle."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def fine_tune_classifier(
    classifier: FineTunedClassifier,
    texts: Sequence[str],
    labels: Sequence[int],
    config: TrainConfig,
    validate: Callable[[FineTunedClassifier], float] | None = None,
    progress: bool = True,
    eval_every: int = 0,
    class_weights: Sequence[float] | None = None,
) -> list[dict[str, float]]:
    """Cross-entropy over the head's outputs (``labels``: class indices, or star indices for a star head);
    ``validate`` (e.g. validation macro-F1) after each epoch and
    every ``eval_every`` steps drives early stopping, and the best weights are kept."""
    import torch

    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts, and at least one; got {len(texts)} and {len(labels)}")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    classifier.classes = sorted(set(int(y) for y in labels))
    model = classifier.model
    base = getattr(model, model.base_model_prefix, None)
    if base is not None:
        freeze_transformer(base, config.freeze)
    set_dropout(model, config.dropout)
    lengths = [len(t) for t in texts]
    steps_per_epoch = len(length_batches(lengths, config.batch_size, random.Random(0)))
    weight = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    y = torch.tensor([int(v) for v in labels], dtype=torch.long)

    def loss_step(idx: list[int]) -> torch.Tensor:
        logits = classifier.logits(classifier._features([texts[i] for i in idx]))  # (b, outputs)
        return loss_fn(logits, y[idx])

    evaluate = (lambda: validate(classifier)) if validate is not None else None
    result = fit(model, lambda epoch: length_batches(lengths, config.batch_size, rng), loss_step, config,
                 steps_per_epoch=steps_per_epoch, evaluate=evaluate,
                 metric="val/macro_f1", eval_every=eval_every, desc="sentiment", progress=progress)
    return result.history
