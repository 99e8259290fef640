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
from shoprank.search.facets import FacetCodes
from shoprank.search.ranked import CatalogRows
from shoprank.store import Store


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
        are skipped; a value's ties are listed in the order of their first product in ``ids``). A search's
        list of engine rows (:class:`~shoprank.search.ranked.CatalogRows`) is counted by the engine's own codes,
        with no look-up per product; other lists cost one dictionary look-up an id."""
        if isinstance(ids, CatalogRows):
            return ids.facets(top)
        view = self._facet_view()
        rows = np.fromiter(map(view.row.get, ids, itertools.repeat(-1)), np.int64, count=len(ids))
        return view.codes.count(rows, top)

    def _facet_view(self) -> _FacetView:
        """The facet codes of the current entries (made again once after each change of the catalogue)."""
        entries = self.entries
        view = self._view
        if view is not None and view.entries is entries:
            return view
        view = _FacetView(entries)
        self._view = view
        return view


class _FacetView:
    """Facet codes of one version of the entries, and each id's row in them."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.row = {pid: n for n, pid in enumerate(entries)}
        self.codes = FacetCodes(list(entries.values()))


def _finite(value: float) -> float:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else 0.0
