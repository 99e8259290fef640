"""Explicit orders of a result set: ``sort=relevance|price_asc|price_desc|newest``.

A sort orders the whole matching set (as the cascade lists it: up to its ``MATCH_LIMIT`` products, taken in
relevance order), then the page is cut from it, so pages are monotone in the key and disjoint. The sort is
stable: products with the same key keep their relevance order. Products without the key (no price, no
``created_at``) come last in every order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

SORTS = ("relevance", "price_asc", "price_desc", "newest")

T = TypeVar("T")


def check_sort(name: str) -> str:
    if name not in SORTS:
        raise ValueError(f"unknown sort {name!r}; valid sorts: {', '.join(SORTS)}")
    return name


def sort_items(items: Sequence[T], sort: str, price: Callable[[T], float | None],
               created: Callable[[T], float | None]) -> list[T]:
    """``items`` (in relevance order) in the order ``sort`` asks for; ``relevance`` keeps them as they are."""
    check_sort(sort)
    if sort == "relevance":
        return list(items)
    field = created if sort == "newest" else price
    descending = sort in ("price_desc", "newest")

    def key(item: T) -> tuple[int, float]:
        value = field(item)
        if value is None or not math.isfinite(value):
            return (1, 0.0)
        return (0, -value if descending else value)

    return sorted(items, key=key)  # Python's sort is stable: ties keep their relevance order
