"""The cross-encoder ranker: the pretrained model with a scoring head over (query, product text).

Fine-tuned with binary / graded cross-entropy (a grade is scaled to a target in [0, 1]);
dropout, weight decay, warm-up, frozen lower layers and early stopping on validation NDCG@10
come from :class:`~shoprank.training.loop.TrainConfig`; metrics go to TensorBoard event files.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.training.loop import TrainConfig, fit, freeze_transformer, set_dropout


@dataclass
class LabeledPair:
    query: str
    text: str
    label: float  # target in [0, 1]


class CrossEncoderRanker:
    """``score(queries, texts)`` -> one logit per pair (higher is more relevant)."""

    name = "cross-encoder"

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 64, batch_size: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, max_length: int = 64, dropout: float = 0.1
                        ) -> CrossEncoderRanker:
        """A fresh scoring head on a local pretrained encoder (default all-MiniLM-L6-v2)."""
        from shoprank.encoders.text import offline, resolve_model_path

        offline()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = str(resolve_model_path(path))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized head" is expected here
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=1, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(folder), max_length)

    @classmethod
    def load(cls, folder: Path, max_length: int = 64) -> CrossEncoderRanker:
        from shoprank.encoders.text import offline

        offline()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(str(folder)), max_length)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))

    def _features(self, queries: Sequence[str], texts: Sequence[str]) -> Any:
        return self.tokenizer(list(queries), list(texts), padding=True, truncation="only_second",
                              max_length=self.max_length, return_tensors="pt")

    def score(self, queries: Sequence[str], texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Logits, shape (n,). Pairs are batched by length so little padding is computed."""
        import torch
        from tqdm.auto import tqdm

        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts")
        order = np.argsort([len(q) + len(t) for q, t in zip(queries, texts, strict=True)], kind="stable")
        out = np.zeros(len(queries), np.float32)
        self.model.eval()
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), desc="cross-encoder", disable=not progress,
                              leave=False):
                idx = order[start : start + self.batch_size]
                features = self._features([queries[i] for i in idx], [texts[i] for i in idx])
                out[idx] = self.model(**features).logits[:, 0].float().numpy()
        return out


def fine_tune_cross_encoder(
    ranker: CrossEncoderRanker,
    pairs: list[LabeledPair],
    config: TrainConfig,
    validate: Callable[[CrossEncoderRanker], float] | None = None,
    progress: bool = True,
    eval_every: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Graded binary cross-entropy; validation NDCG@10 after each epoch (and every ``eval_every``
    steps) drives early stopping, and the best weights are kept. With several workers each scores its share
    of every batch."""
    import torch

    from shoprank.training.distributed import shard

    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    model = ranker.model
    base = getattr(model, model.base_model_prefix, None)
    if base is not None:
        freeze_transformer(base, config.freeze)
    set_dropout(model, config.dropout)
    steps_per_epoch = max(1, len(pairs) // config.batch_size)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def batches(epoch: int) -> Iterator[list[LabeledPair]]:
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for b in range(steps_per_epoch):
            yield [pairs[i] for i in order[b * config.batch_size : (b + 1) * config.batch_size]]

    def loss_step(batch: list[LabeledPair]) -> torch.Tensor:
        batch = list(shard(batch))
        features = ranker._features([p.query for p in batch], [p.text for p in batch])
        logits = model(**features).logits[:, 0]  # (b,)
        return loss_fn(logits, torch.tensor([p.label for p in batch], dtype=torch.float32))

    result = fit(model, batches, loss_step, config, steps_per_epoch=steps_per_epoch,
                 evaluate=(lambda: validate(ranker)) if validate is not None else None,
                 eval_every=eval_every, desc="cross-encoder", progress=progress, on_step=on_step)
    return result.history
