"""An in-memory slim view of a shop's catalogue: titles for answers, fields for facets.

Kept in step with the store by version (``products_changed_since``), so products written by the API,
by ``shoprank ingest`` or by another replica show up without a restart.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from shoprank.data.records import Product
from shoprank.results import ScoredItem
from shoprank.store import Store

PRICE_BUCKETS: tuple[float, ...] = (10, 25, 50, 100, 250, 500, 1000)
"""Upper bounds of the price facet's buckets; the last bucket is open-ended."""


class Entry(NamedTuple):
    title: str
    category: str
    top_category: str
    brand: str
    price: float | None
    in_stock: bool
    currency: str = ""
    created_at: float | None = None


def entry_of(product: Product) -> Entry:
    return Entry(product.title, product.category, product.top_category, product.brand, product.price, product.in_stock,
                 product.currency, product.created_at)


class Catalog:
    """id -> :class:`Entry` for every product of one shop."""

    def __init__(self, store: Store, snapshot: tuple[Sequence[Product], int] | None = None) -> None:
        """``snapshot``: (every product, the catalogue version they are of), already read from ``store``."""
        self.store = store
        self._lock = threading.Lock()
        if snapshot is not None:
            self.version = snapshot[1]
            self.entries: dict[str, Entry] = {p.id: entry_of(p) for p in snapshot[0]}
        else:
            self.version = store.catalog_version()
            self.entries = {p.id: entry_of(p) for p in store.iter_products()}
        self._view: _FacetView | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.entries

    def sync(self) -> tuple[list[Product], list[str]]:
        """Apply the store's changes since the last sync; returns (upserted, deleted)."""
        with self._lock:
            changed, deleted, version = self.store.products_changed_since(self.version)
            if version == self.version:
                return [], []
            entries = dict(self.entries)  # copy on write: readers never see a half-applied change
            for product_id in deleted:
                entries.pop(product_id, None)
            for product in changed:
                entries[product.id] = entry_of(product)
            self.entries = entries
            self.version = version
            return changed, deleted

    # answers ------------------------------------------------------------------------------
    def hydrate(self, items: Iterable[ScoredItem], *, details: bool = True) -> list[dict[str, Any]]:
        """Items as JSON-ready dicts; ids no longer in the catalogue are dropped."""
        entries = self.entries
        out: list[dict[str, Any]] = []
        for item in items:
            entry = entries.get(item.id)
            if entry is None:
                continue
            row: dict[str, Any] = {
                "id": item.id,
                "title": entry.title,
                "score": _finite(item.score),
                "reasons": list(item.reasons),
                "parts": {k: _finite(v) for k, v in item.parts.items()},
            }
            if details:
                row.update(category=entry.category, brand=entry.brand, price=entry.price,
                           currency=entry.currency or None, in_stock=entry.in_stock)
            out.append(row)
        return out

    def facets(self, ids: Sequence[str], top: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Counts of top-level category, brand, price bucket and stock over ``ids`` (ids not in the catalogue
        are skipped; a value's ties are listed in the order of their first product in ``ids``). Counted over
        per-product code arrays, so 10,000 ids cost one dictionary look-up each."""
        view = self._facet_view()
        rows = np.fromiter(map(view.row.get, ids, itertools.repeat(-1)), np.int64, count=len(ids))
        rows = rows[rows >= 0]
        buckets = view.bucket[rows]
        buckets = np.bincount(buckets[buckets >= 0], minlength=len(PRICE_BUCKETS) + 1)
        stock = view.in_stock[rows]
        in_stock, out_of_stock = int(stock.sum()), int(len(stock) - stock.sum())
        return {
            "category": _most_common(view.category[rows], view.category_names, top),
            "brand": _most_common(view.brand[rows], view.brand_names, top),
            "price": [_price_facet(i, int(n)) for i, n in enumerate(buckets) if n],
            "in_stock": [{"value": v, "count": n} for v, n in ((True, in_stock), (False, out_of_stock)) if n],
        }

    def _facet_view(self) -> _FacetView:
        """The facet code arrays of the current entries (rebuilt once after each change of the catalogue)."""
        entries = self.entries
        view = self._view
        if view is not None and view.entries is entries:
            return view
        view = _FacetView(entries)
        self._view = view
        return view


class _FacetView:
    """Per-product facet codes of one version of the entries: row by id, category and brand codes (0 = none),
    price bucket (-1 = no price), stock."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.row = {pid: n for n, pid in enumerate(entries)}
        codes: dict[str, dict[str, int]] = {"category": {"": 0}, "brand": {"": 0}}
        values = list(entries.values())
        self.category = np.fromiter((codes["category"].setdefault(e.top_category, len(codes["category"]))
                                     for e in values), np.int64, count=len(values))
        self.brand = np.fromiter((codes["brand"].setdefault(e.brand, len(codes["brand"])) for e in values),
                                 np.int64, count=len(values))
        self.category_names = list(codes["category"])
        self.brand_names = list(codes["brand"])
        self.bucket = np.fromiter((-1 if e.price is None else _bucket(e.price) for e in values), np.int64,
                                  count=len(values))
        self.in_stock = np.fromiter((bool(e.in_stock) for e in values), bool, count=len(values))


def _most_common(codes: np.ndarray, names: list[str], top: int) -> list[dict[str, Any]]:
    """The ``top`` most frequent non-empty codes as facet values; ties in order of first appearance (what
    ``Counter.most_common`` gives over the same sequence)."""
    codes = codes[codes > 0]
    if not len(codes):
        return []
    values, first, counts = np.unique(codes, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))[:top]
    return [{"value": names[values[i]], "count": int(counts[i])} for i in order]


def _finite(value: float) -> float:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else 0.0


def _bucket(price: float) -> int:
    for i, bound in enumerate(PRICE_BUCKETS):
        if price < bound:
            return i
    return len(PRICE_BUCKETS)


def _price_facet(index: int, count: int) -> dict[str, Any]:
    low = 0 if index == 0 else PRICE_BUCKETS[index - 1]
    high = PRICE_BUCKETS[index] if index < len(PRICE_BUCKETS) else None
    label = f"{low:g}-{high:g}" if high is not None else f"{low:g}+"
    return {"value": label, "min": low, "max": high, "count": count}
