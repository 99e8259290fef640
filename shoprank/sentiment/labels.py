"""The three sentiment classes and how a star rating maps onto them."""

from __future__ import annotations

import math

import numpy as np

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""Class index -> name; models always output probabilities in this order."""
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


def label_of_rating(rating: float | None) -> int | None:
    """1-2 stars negative, 3 neutral, 4-5 positive; None for no rating."""
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return None
    if rating < 2.5:
        return NEGATIVE
    if rating < 3.5:
        return NEUTRAL
    return POSITIVE


def label_index(name: str) -> int:
    """A label name (or its index as text) -> its index; the error lists the valid names."""
    text = str(name).strip().lower()
    if text in LABELS:
        return LABELS.index(text)
    aliases = {"neg": 0, "neu": 1, "pos": 2, "负面": 0, "中性": 1, "正面": 2}
    if text in aliases:
        return aliases[text]
    raise ValueError(f"unknown sentiment label {name!r}; valid labels: {', '.join(LABELS)}")


def polarity(probabilities: np.ndarray) -> np.ndarray:
    """P(positive) - P(negative), in [-1, 1]; shape (n,)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    return np.clip(probs[:, POSITIVE] - probs[:, NEGATIVE], -1.0, 1.0)
