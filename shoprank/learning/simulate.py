"""Simulated shoppers under the position-based model, for benchmarks and tests with a known truth.

A shopper examines the result at position k with probability ``(1 / (k + 1)) ** bias``; an examined product
of relevance ``rel`` in [0, 1] is clicked with probability ``noise + (1 - 2 * noise) * rel``; a click goes on
to the cart with probability ``cart * rel`` and a cart to a purchase with probability ``buy``. Only a share
``active`` of shoppers click at all (the others look and leave). Everything is drawn from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ShopperModel:
    bias: float = 1.0  # position-bias strength: examination (1 / (k + 1)) ** bias; 0 = no bias
    noise: float = 0.1  # click probability of an examined irrelevant product (and 1 - it for a perfect one)
    active: float = 0.6  # share of shoppers who click at all
    cart: float = 0.5  # P(add to cart | click) for a perfectly relevant product
    buy: float = 0.6  # P(purchase | add to cart)

    def __post_init__(self) -> None:
        if self.bias < 0:
            raise ValueError(f"bias must not be negative, got {self.bias}")
        for name in ("noise", "active", "cart", "buy"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie between 0 and 1, got {value}")
        if self.noise > 0.5:
            raise ValueError(f"noise above 0.5 makes irrelevant products likelier clicks than relevant: {self.noise}")

    def examination(self, positions: np.ndarray | Sequence[int]) -> np.ndarray:
        return (1.0 / (np.asarray(positions, np.float64) + 1.0)) ** self.bias

    def session(self, items: Sequence[str], positions: Sequence[int], relevance: Mapping[str, float],
                rng: np.random.Generator) -> list[str | None]:
        """One shopper's outcome per shown product (None, ``click``, ``add_to_cart`` or ``purchase``)."""
        out: list[str | None] = [None] * len(items)
        if rng.random() >= self.active:
            return out
        examined = rng.random(len(items)) < self.examination(positions)
        for i, pid in enumerate(items):
            if not examined[i]:
                continue
            rel = float(relevance.get(pid, 0.0))
            if rng.random() < self.noise + (1.0 - 2.0 * self.noise) * rel:
                out[i] = "click"
                if rng.random() < self.cart * rel:
                    out[i] = "purchase" if rng.random() < self.buy else "add_to_cart"
        return out
