"""The three sentiment classes and how a star rating maps onto them."""

from __future__ import annotations

import math

import numpy as np

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""Class index -> name; models always output probabilities in this order."""
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


STARS = 5
STAR_LABELS = np.asarray([NEGATIVE, NEGATIVE, NEUTRAL, POSITIVE, POSITIVE])
"""Star index (0 = 1 star) -> class: 1-2 stars negative, 3 neutral, 4-5 positive."""
_STARS_TO_LABELS = np.eye(len(LABELS), dtype=np.float32)[STAR_LABELS]  # (5, 3) one-hot rows


def star_of_rating(rating: float | None) -> int | None:
    """The star index 0-4 of a 1-5 rating (rounded half up, clipped to 1-5), None for no rating."""
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return None
    return int(min(max(math.floor(float(rating) + 0.5), 1), STARS)) - 1


def label_of_rating(rating: float | None) -> int | None:
    """1-2 stars negative, 3 neutral, 4-5 positive (below 2.5, below 3.5, the rest); None for no rating."""
    star = star_of_rating(rating)
    return None if star is None else int(STAR_LABELS[star])


def stars_to_labels(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities over the 5 stars (n, 5) -> over the three classes (n, 3), summed per class."""
    return np.asarray(probabilities, dtype=np.float32) @ _STARS_TO_LABELS


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
