"""Facet counts over a list of catalogue rows: per-row code arrays, so 10,000 products cost a few array reads.

Both catalogues a search touches keep one: the engine's (:class:`shoprank.search.catalog.Catalog`, by the rows the
result set lists, so a search never turns its matches into ids to count them) and the server's id-keyed view
(:class:`shoprank.serving.catalog.Catalog`, for lists that arrive as ids). Codes are kept current product by
product, so a catalogue of a million rows is not re-coded after each upsert.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

PRICE_BUCKETS: tuple[float, ...] = (10, 25, 50, 100, 250, 500, 1000)
"""Upper bounds of the price facet's buckets; the last bucket is open-ended."""


class Faceted(Protocol):
    """What facets read of a product (a :class:`~shoprank.data.records.Product` or a catalogue entry)."""

    top_category: str
    brand: str
    price: float | None
    in_stock: bool


class _Arrays(NamedTuple):
    category: np.ndarray  # int32 code, 0 = none
    brand: np.ndarray  # int32 code, 0 = none
    bucket: np.ndarray  # int8 price bucket, -1 = no price
    in_stock: np.ndarray  # bool
    present: np.ndarray  # bool: the row holds a product (a removed or unknown row counts for nothing)


_NOTHING = (0, 0, -1, True, False)  # the codes of a row without a product
_DTYPES = (np.int32, np.int32, np.int8, bool, bool)


class FacetCodes:
    """Per-row facet codes: top-level category and brand (codes into ``category_names`` / ``brand_names``),
    price bucket, stock, and whether the row holds a product. ``set`` and ``extend`` keep them current; a count
    running beside a change reads either the old or the new arrays of a row, never a torn row list."""

    def __init__(self, products: Sequence[Faceted | None] = ()) -> None:
        self._lock = threading.Lock()  # writers only: readers take the arrays as they are
        self.category_names: list[str] = [""]
        self.brand_names: list[str] = [""]
        self._codes: dict[str, dict[str, int]] = {"category": {"": 0}, "brand": {"": 0}}
        self._arrays = _Arrays(*self._coded(products))

    def __len__(self) -> int:
        return len(self._arrays.present)

    def _code(self, kind: str, value: str, names: list[str]) -> int:
        codes = self._codes[kind]
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(names)
            names.append(value)
        return code

    def _coded(self, products: Sequence[Faceted | None]) -> tuple[np.ndarray, ...]:
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        category, brand, bucket, in_stock, present = (column.append for column in columns)
        for p in products:
            if p is None:
                for add, value in zip((category, brand, bucket, in_stock, present), _NOTHING, strict=True):
                    add(value)
                continue
            category(self._code("category", p.top_category, self.category_names))
            brand(self._code("brand", p.brand, self.brand_names))
            bucket(-1 if p.price is None else price_bucket(p.price))
            in_stock(bool(p.in_stock))
            present(True)
        return tuple(np.asarray(column, dtype) for column, dtype in zip(columns, _DTYPES, strict=True))

    def _fill(self, row: int, product: Faceted | None, *arrays: np.ndarray) -> None:
        category, brand, bucket, in_stock, present = arrays
        if product is None:
            category[row], brand[row], bucket[row], in_stock[row], present[row] = 0, 0, -1, True, False
            return
        category[row] = self._code("category", product.top_category, self.category_names)
        brand[row] = self._code("brand", product.brand, self.brand_names)
        bucket[row] = -1 if product.price is None else price_bucket(product.price)
        in_stock[row] = bool(product.in_stock)
        present[row] = True

    def set(self, row: int, product: Faceted | None) -> None:
        """Row ``row`` now holds ``product`` (None: nothing)."""
        with self._lock:
            self._fill(row, product, *self._arrays)

    def extend(self, products: Sequence[Faceted | None]) -> None:
        """Rows for ``products`` after the last one."""
        with self._lock:
            added = self._coded(products)
            self._arrays = _Arrays(*(np.concatenate([old, new]) for old, new in zip(self._arrays, added,
                                                                                     strict=True)))

    def count(self, rows: np.ndarray | Iterable[int], top: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Counts of top-level category, brand, price bucket and stock over ``rows`` (rows without a product
        are skipped; a value's ties are listed in the order of their first row in ``rows``)."""
        arrays = self._arrays
        rows = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), np.int64)
        rows = rows[(rows >= 0) & (rows < len(arrays.present))]
        rows = rows[arrays.present[rows]]
        buckets = arrays.bucket[rows]
        buckets = np.bincount(buckets[buckets >= 0], minlength=len(PRICE_BUCKETS) + 1)
        stock = arrays.in_stock[rows]
        in_stock = int(stock.sum())
        out_of_stock = len(stock) - in_stock
        return {
            "category": _most_common(arrays.category[rows], self.category_names, top),
            "brand": _most_common(arrays.brand[rows], self.brand_names, top),
            "price": [price_facet(i, int(n)) for i, n in enumerate(buckets) if n],
            "in_stock": [{"value": v, "count": n} for v, n in ((True, in_stock), (False, out_of_stock)) if n],
        }


def _most_common(codes: np.ndarray, names: list[str], top: int) -> list[dict[str, Any]]:
    """The ``top`` most frequent non-empty codes as facet values; ties in order of first appearance (what
    ``Counter.most_common`` gives over the same sequence)."""
    codes = codes[codes > 0]
    if not len(codes):
        return []
    values, first, counts = np.unique(codes, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))[:top]
    return [{"value": names[values[i]], "count": int(counts[i])} for i in order]


def price_bucket(price: float) -> int:
    for i, bound in enumerate(PRICE_BUCKETS):
        if price < bound:
            return i
    return len(PRICE_BUCKETS)


def price_facet(index: int, count: int) -> dict[str, Any]:
    low = 0 if index == 0 else PRICE_BUCKETS[index - 1]
    high = PRICE_BUCKETS[index] if index < len(PRICE_BUCKETS) else None
    label = f"{low:g}-{high:g}" if high is not None else f"{low:g}+"
    return {"value": label, "min": low, "max": high, "count": count}
