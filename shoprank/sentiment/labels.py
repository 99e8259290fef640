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


STARS = 5
STAR_LABELS = np.asarray([NEGATIVE, NEGATIVE, NEUTRAL, POSITIVE, POSITIVE])
"""Star index (0 = 1 star) -> class, as :func:`label_of_rating` maps ratings."""


def star_of_rating(rating: float | None) -> int | None:
    """The star index 0-4 of a 1-5 rating (rounded half up, as :func:`label_of_rating` splits), None for none."""
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return None
    return int(min(max(math.floor(float(rating) + 0.5), 1), STARS)) - 1


def stars_to_labels(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities over the 5 stars (n, 5) -> over the three classes (n, 3), summed per class."""
    out = np.zeros((len(probabilities), len(LABELS)), np.float32)
    for star, label in enumerate(STAR_LABELS):
        out[:, label] += probabilities[:, star]
    return out


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
