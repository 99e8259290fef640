"""From probabilities to a label: per-class offsets on the log-probabilities, chosen on validation data to
maximise macro-F1 (the neutral class is rare and would otherwise almost never be predicted)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shoprank.evaluation.metrics import macro_f1
from shoprank.sentiment.labels import LABELS


def decide(probabilities: np.ndarray, offsets: Sequence[float] | None = None) -> np.ndarray:
    """argmax of log P + offset, over classes with a non-zero probability somewhere; shape (n,)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    scores = np.log(np.maximum(probs, 1e-12))
    if offsets is not None:
        scores = scores + np.asarray(offsets, dtype=np.float64)
    scores[:, probs.max(axis=0) <= 0] = -np.inf  # a class the model never saw is never predicted
    return scores.argmax(axis=1)


def fit_offsets(probabilities: np.ndarray, truth: Sequence[int], grid: Sequence[float] | None = None,
                rounds: int = 2) -> list[float]:
    """Coordinate search of the negative and neutral offsets (positive fixed at 0) maximising macro-F1.

    Ties keep the smaller change, so balanced data keeps offsets near 0."""
    grid = list(grid) if grid is not None else [round(x, 2) for x in np.arange(-2.0, 2.01, 0.1)]
    y = np.asarray(truth)
    classes = sorted(set(y.tolist()))
    offsets = [0.0] * len(LABELS)

    def score(candidate: list[float]) -> float:
        return macro_f1(decide(probabilities, candidate), y, classes)

    best = score(offsets)
    for _ in range(rounds):
        for c in (0, 1):
            if c not in classes:
                continue
            for value in sorted(grid, key=abs):
                trial = list(offsets)
                trial[c] = float(value)
                s = score(trial)
                if s > best + 1e-9:
                    best, offsets = s, trial
    return offsets
