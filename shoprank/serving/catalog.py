"""An in-memory slim view of a shop's catalogue: titles for answers, fields for facets.

Kept in step with the store by version (``products_changed_since``), so products written by the API,
by ``shoprank ingest`` or by another replica show up without a restart.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

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
        """Counts of top-level category, brand, price bucket and stock over ``ids``."""
        entries = self.entries
        categories: Counter[str] = Counter()
        brands: Counter[str] = Counter()
        prices: Counter[int] = Counter()
        stock: Counter[bool] = Counter()
        for product_id in ids:
            entry = entries.get(product_id)
            if entry is None:
                continue
            if entry.top_category:
                categories[entry.top_category] += 1
            if entry.brand:
                brands[entry.brand] += 1
            if entry.price is not None:
                prices[_bucket(entry.price)] += 1
            stock[entry.in_stock] += 1
        return {
            "category": [{"value": v, "count": n} for v, n in categories.most_common(top)],
            "brand": [{"value": v, "count": n} for v, n in brands.most_common(top)],
            "price": [_price_facet(i, prices[i]) for i in sorted(prices)],
            "in_stock": [{"value": v, "count": stock[v]} for v in (True, False) if stock[v]],
        }


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
