"""What the re-ranker needs from an engine: the products of a candidate list and their text vectors.

Used by the batch commands (``run search|rerank|recommend``) and by the HTTP service, so both re-rank
from the same data. Unknown ids get no product and a zero vector (similar to nothing).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from shoprank.data.records import Product

VectorFn = Callable[[Sequence[str]], np.ndarray]


def search_context(stack: Any, ids: Sequence[str]) -> tuple[dict[str, Product], VectorFn]:
    """Products and text vectors of ``ids`` from a search stack (its in-memory catalogue)."""
    rows = stack.catalog.rows(list(ids))
    products = {pid: stack.catalog.products[r] for pid, r in zip(ids, rows.tolist(), strict=True)
                if r >= 0 and stack.catalog.products[r] is not None}
    dense = stack.dense.vectors

    def vectors(wanted: Sequence[str]) -> np.ndarray:
        r = stack.catalog.rows(list(wanted))
        out = np.zeros((len(r), dense.shape[1]), dtype=np.float64)
        known = r >= 0
        out[known] = dense[r[known]]
        return out

    return products, vectors


def recommend_vectors(rec: Any) -> VectorFn:
    """Text vectors of item ids from a recommender's artefacts (row 0, the padding row, for unknown ids)."""
    text = rec.art.text_vectors

    def vectors(wanted: Sequence[str]) -> np.ndarray:
        rows = [rec.catalogue.index.get(pid, 0) for pid in wanted]
        out = np.asarray(text[rows], dtype=np.float64)
        out[[n for n, r in enumerate(rows) if r == 0]] = 0.0
        return out

    return vectors


def recommend_context(rec: Any, ids: Sequence[str],
                      cache: MutableMapping[str, Product | None]) -> tuple[dict[str, Product], VectorFn]:
    """Products (from the recommender's store, memoised in ``cache``) and text vectors of ``ids``."""
    missing = [pid for pid in ids if pid not in cache]
    if missing:
        found = rec.store.get_products(missing) if rec.store is not None else [None] * len(missing)
        cache.update(zip(missing, found, strict=True))
    products = {pid: p for pid in ids if (p := cache[pid]) is not None}
    return products, recommend_vectors(rec)
