"""Who sees which variant: a salted hash of the shopper's id, so the same shopper keeps their variant on every
request and replica, and two experiments (two salts) split traffic independently of each other."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def unit_share(salt: str, unit: str) -> float:
    """A number in [0, 1) fixed by (salt, unit) and uniform over units."""
    digest = hashlib.blake2b(f"{salt}\x1f{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(salt: str, unit: str, names: Sequence[str], traffic: Sequence[float]) -> str:
    """The variant of ``unit``: the one whose slice of [0, 1) (shares in the given order) holds its hash."""
    share = unit_share(salt, unit)
    edge = 0.0
    for name, part in zip(names, traffic, strict=True):
        edge += part
        if share < edge:
            return name
    return names[-1]  # rounding: shares that sum to 1 within 1e-6
