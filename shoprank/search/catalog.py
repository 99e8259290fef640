"""The rows every index shares: row ``i`` is the same product in the lexical and the vector index."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from shoprank.data.records import Product
from shoprank.search.facets import FacetCodes


class Catalog:
    """Product ids by row, the row of each live id, and which rows are live."""

    def __init__(self, ids: Sequence[str] = ()) -> None:
        self.ids: list[str] = list(ids)
        self.row_of: dict[str, int] = {pid: row for row, pid in enumerate(self.ids)}
        self.alive = np.ones(len(self.ids), bool)
        self.products: list[Product | None] = [None] * len(self.ids)
        self._stock: np.ndarray | None = None  # in_stock() per row, made on first use, kept up to date after
        self._facets: FacetCodes | None = None  # facet_codes(): the same

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_live(self) -> int:
        return int(self.alive.sum())

    def attach(self, products: Iterable[Product]) -> None:
        """Fill in the product records (from the store) for known rows."""
        for product in products:
            row = self.row_of.get(product.id)
            if row is not None:
                self.products[row] = product
                if self._stock is not None:
                    self._stock[row] = product.in_stock
                if self._facets is not None:
                    self._facets.set(row, product)

    def append(self, products: Sequence[Product]) -> np.ndarray:
        """New rows for ``products``; an id seen before has its old row hidden. Returns the new rows."""
        self.remove(p.id for p in products)
        start = len(self.ids)
        for offset, product in enumerate(products):
            self.ids.append(product.id)
            self.row_of[product.id] = start + offset
            self.products.append(product)
        self.alive = np.concatenate([self.alive, np.ones(len(products), bool)])
        if self._stock is not None:
            self._stock = np.concatenate([self._stock, np.fromiter((p.in_stock for p in products), bool,
                                                                   len(products))])
        if self._facets is not None:
            self._facets.extend(products)
        return np.arange(start, len(self.ids))

    def remove(self, ids: Iterable[str]) -> int:
        removed = 0
        for pid in ids:
            row = self.row_of.pop(pid, None)
            if row is not None:
                self.alive[row] = False
                self.products[row] = None
                if self._stock is not None:
                    self._stock[row] = True
                if self._facets is not None:
                    self._facets.set(row, None)
                removed += 1
        return removed

    def in_stock(self) -> np.ndarray:
        """Per row, False where the product record says out of stock (rows without a record: True), so that
        a stock rule over thousands of rows is one array look-up. Read-only for callers."""
        stock = self._stock
        if stock is None or len(stock) != len(self.products):  # first use, or ``products`` was replaced
            stock = np.fromiter((p is None or p.in_stock for p in self.products), bool, len(self.products))
            self._stock = stock
        return stock

    def facet_codes(self) -> FacetCodes:
        """Per-row facet codes of the product records (rows without one count for nothing), made on first use
        and kept current by :meth:`attach`, :meth:`append` and :meth:`remove`."""
        codes = self._facets
        if codes is None or len(codes) != len(self.products):  # first use, or ``products`` was replaced
            codes = FacetCodes(self.products)
            self._facets = codes
        return codes

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Rows of live ids, -1 for unknown ones."""
        return np.asarray([self.row_of.get(pid, -1) for pid in ids], dtype=np.int64)

    def save(self, folder: Path) -> None:
        (folder / "catalog.json").write_text(json.dumps({"ids": self.ids, "alive": self.alive.tolist()}))

    @classmethod
    def load(cls, folder: Path) -> Catalog:
        data = json.loads((folder / "catalog.json").read_text())
        catalog = cls(data["ids"])
        catalog.alive = np.asarray(data["alive"], bool)
        catalog.row_of = {pid: row for row, pid in enumerate(catalog.ids) if catalog.alive[row]}
        return catalog
