"""A query's matching set as the engine ranks it: the ranked head as results, the rest as ids.

A broad query matches thousands of products; ``total``, facets, rules and deep pages need all of them, but only
a page is ever shown. :class:`RankedSet` keeps the ranked head (the pool's matches, at most a few hundred) as
:class:`~shoprank.results.ScoredItem` and the rest of the set as plain ids and products, scored below every
ranked one (``floor - 0.001 * position``), and makes result objects only for the places asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from shoprank.data.records import Product
from shoprank.results import ScoredItem

TAIL_REASON = "matches the query"
TAIL_STEP = 1e-3
"""Score drop per place in the rest of the set, below ``floor`` (one less than the lowest ranked score)."""


class CatalogRows(Sequence[Any]):
    """The engine catalogue's ``ids`` or ``products`` at ``rows``, read when asked: a broad query lists up to
    10,000 products, and most answers never look at more than their length (the stock rule), their facet codes
    (:meth:`facets`) or a page of them. Equal to any sequence of the same items."""

    __slots__ = ("catalog", "rows", "what")

    def __init__(self, rows: np.ndarray, catalog: Any, what: str = "ids") -> None:
        self.rows = rows
        self.catalog = catalog  # a shoprank.search.catalog.Catalog
        self.what = what

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> CatalogRows: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return CatalogRows(self.rows[index], self.catalog, self.what)
        return getattr(self.catalog, self.what)[int(self.rows[index])]

    def __iter__(self) -> Iterator[Any]:
        source = getattr(self.catalog, self.what)
        return (source[row] for row in self.rows.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def facets(self, top: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Facet counts over these rows, from the catalogue's codes (no look-up per product)."""
        return self.catalog.facet_codes().count(self.rows, top)


class HeadItems(Sequence[ScoredItem]):
    """The ranked head as bare result objects (no score parts or reasons), made when read: a set with an
    explainer reads only its ids (:meth:`RankedSet.head_ids`) and its length."""

    __slots__ = ("catalog", "rows", "scores")

    def __init__(self, rows: np.ndarray, scores: np.ndarray, catalog: Any) -> None:
        self.rows, self.scores, self.catalog = rows, scores, catalog

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> ScoredItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[ScoredItem]: ...
    def __getitem__(self, index: int | slice) -> ScoredItem | list[ScoredItem]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return ScoredItem(self.catalog.ids[int(self.rows[index])], float(self.scores[index]), {}, [])


@dataclass
class RankedSet:
    """``head``: the ranked matches, best first; ``tail_ids`` / ``tail_products``: the rest of the set in its
    order (lexical matches by BM25, then dense ones by cosine); ``total``: every matching product (the listed
    ones are capped). ``tail_keep`` / ``head_keep``: positions of the rest / of the head still listed (None:
    all), after a rule hid some. ``explainer``: when set, the head's result objects carry no score parts or
    reasons yet and ``explainer(positions)`` makes them, with both, for the head places that are shown.
    ``head_stock`` / ``tail_stock``: whether each head / rest product is in stock (None: read from the products),
    for the stock rule. When the head's products and the rest are :class:`CatalogRows`, :meth:`ids` and
    :meth:`head_ids` list catalogue rows, not ids."""

    head: Sequence[ScoredItem]
    tail_ids: Sequence[str]
    tail_products: Sequence[Product | None]
    floor: float
    total: int
    tail_reasons: tuple[str, ...] = (TAIL_REASON,)
    tail_keep: np.ndarray | None = field(default=None)
    head_products: Sequence[Product | None] = ()
    head_keep: np.ndarray | None = field(default=None)
    explainer: Callable[[Sequence[int]], list[ScoredItem]] | None = None
    head_stock: np.ndarray | None = None
    tail_stock: np.ndarray | None = None

    @classmethod
    def empty(cls) -> RankedSet:
        return cls([], [], [], 0.0, 0)

    def _positions(self) -> np.ndarray:
        return np.arange(len(self.tail_ids)) if self.tail_keep is None else self.tail_keep

    def _head_positions(self) -> np.ndarray:
        return np.arange(len(self.head)) if self.head_keep is None else self.head_keep

    def __len__(self) -> int:
        return len(self._head_positions()) + len(self._positions())

    def tail_item(self, position: int) -> ScoredItem:
        """The result object of the rest's ``position`` (its place in the engine's order, before any hiding)."""
        return ScoredItem(self.tail_ids[position], self.floor - TAIL_STEP * position, {}, list(self.tail_reasons))

    def items(self, start: int = 0, stop: int | None = None) -> list[ScoredItem]:
        """Result objects of places ``start`` to ``stop`` (the whole list when None)."""
        stop = len(self) if stop is None else min(stop, len(self))
        listed = self._head_positions()
        places = [int(p) for p in listed[start:stop]]
        if self.explainer is not None:
            out = self.explainer(places) if places else []
        else:
            out = [self.head[p] for p in places] if self.head_keep is not None else self.head[start:stop]
        first, last = max(0, start - len(listed)), max(0, stop - len(listed))
        if last > first:
            out = out + [self.tail_item(int(p)) for p in self._positions()[first:last]]
        return out

    def head_ids(self) -> Sequence[str]:
        """The ranked head's ids, in order (every place, hidden or not)."""
        if isinstance(self.head_products, CatalogRows):
            return CatalogRows(self.head_products.rows, self.head_products.catalog)
        return [item.id for item in self.head]

    def ids(self) -> Sequence[str]:
        """Every listed id in order (what facets count over): :class:`CatalogRows` when the set is made of the
        engine catalogue's rows."""
        ranked, rest = self.head_products, self.tail_ids
        if isinstance(ranked, CatalogRows) and isinstance(rest, CatalogRows):
            head_rows = ranked.rows if self.head_keep is None else ranked.rows[self.head_keep]
            tail_rows = rest.rows if self.tail_keep is None else rest.rows[self.tail_keep]
            return CatalogRows(np.concatenate([head_rows, tail_rows]), rest.catalog)
        head = self.head if self.head_keep is None else [self.head[int(p)] for p in self.head_keep]
        tail = self.tail_ids if self.tail_keep is None else [self.tail_ids[int(p)] for p in self.tail_keep]
        return [item.id for item in head] + list(tail)
