"""A small, optional randomisation of served results: the interventions that make position bias measurable.

:func:`swap_adjacent` swaps neighbouring results of the first ``depth`` places, each disjoint pair with
probability ``rate`` (pairs start at place 0 or 1, half the time each, so every neighbour pair can swap).
A product moves one place at most, so the cost in NDCG is small (measured by ``bench/click_learning.py``);
off by default everywhere; a shop turns it on with the re-ranking setting ``randomise``
(:class:`~shoprank.rerank.RerankConfig`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_DEPTH = 20
"""Places that may swap: one page of 20."""


def check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"the randomisation rate must lie between 0 (off) and 1, got {rate}")


def swap_adjacent(items: Sequence[T], rate: float, rng: np.random.Generator, depth: int = DEFAULT_DEPTH) -> list[T]:
    """``items`` with neighbouring places in the first ``depth`` swapped, each pair with probability ``rate``."""
    check_rate(rate)
    out = list(items)
    if rate == 0.0 or len(out) < 2:
        return out
    start = int(rng.integers(2))
    for i in range(start, min(depth, len(out)) - 1, 2):
        if rng.random() < rate:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out
