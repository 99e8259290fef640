"""Which products a query matches: the result set that ``total``, facets and pages are counted over.

A product matches a query when

* it matches lexically: a BM25 score above 0 for any of the query's analysed terms, its spelling-corrected
  terms or the completions of its unfinished last word (:meth:`SearchStack.tokens`), in any indexed field; or
* its text vector's cosine with the query's is at least the stack's dense threshold (:func:`dense_threshold`).

The threshold is calibrated on validation queries only (:mod:`shoprank.search.calibration`: the highest cosine
that keeps 99% of the relevant validation products the un-thresholded candidate pool holds) and stored in the
bundle (``StackConfig.dense_threshold``). A stack without one (the untrained ``baseline``
bundle, bundles published before) uses :data:`BASE_THRESHOLDS` for its encoder, chosen the same way on Home
Depot's validation queries with the untuned encoder (``python -m bench.result_set --base``).

The set decides which products are shown, not how they are ordered: the ranker orders the pool it was trained
on (BM25 top ``lexical_k`` united with the dense top ``dense_k``, no threshold), whose pool-relative features
(price against the pool's median, cosine against the pool's best) would shift if the set's absent members
were taken out first, and the set's members keep that order. So the set only removes products from the
ranking that had no result set: a relevant product leaves the first 100 only when it does not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BASE_THRESHOLDS: dict[str, float | None] = {"biencoder": 0.462, "dual": 0.462, "none": None, "e5": None}
"""Dense threshold of a stack that stores none, by encoder. ``biencoder``/``dual``: the untuned MiniLM's,
chosen on Home Depot's validation queries by ``shoprank.search.calibration.calibrate`` (keep 0.99).
``e5`` (Chinese shops): not calibrated, so None: the dense top ``dense_k`` all match, as before result sets.
``none`` has no vectors: lexical matches only."""
MATCH_LIMIT = 10_000
"""Matching products listed per query (pages, facets and re-ranking reach this far); ``total`` still counts
every match."""


def dense_threshold(config: Any) -> float | None:
    """The stack's threshold: the calibrated one in its config, else its encoder's default."""
    stored = getattr(config, "dense_threshold", None)
    if stored is not None:
        return float(stored)
    return BASE_THRESHOLDS.get(config.encoder)


@dataclass
class ResultSet:
    """A query's matching set and the pool the ranker orders it in.

    ``pool``: the stack's :class:`~shoprank.search.stack.Candidates` the ranker was trained on, the BM25 top
    ``lexical_k`` united with the dense top ``dense_k`` with no threshold (within the request's filters), so
    its pool-relative features (price against the pool's median, cosine against the pool's best) are the ones
    it learned on; ``member``: which of them match (a lexical match, or cosine at or above the threshold): the
    ranked head shows only those. ``tail``: the rest of the set, up to :data:`MATCH_LIMIT` in all, lexical
    matches in BM25 order, then dense ones by cosine. ``total``: every matching product."""

    pool: Any
    member: np.ndarray
    tail: np.ndarray
    total: int


def _nearest(cos: np.ndarray, live: np.ndarray, k: int, keep: Any = None) -> np.ndarray:
    """The ``k`` live rows (within ``keep``) of highest cosine, most similar first, ties by row: the top
    ``k``, widened until ``k`` of them pass ``keep`` (or every live row was looked at)."""
    rows = np.flatnonzero(live)
    want = k if keep is None else 4 * k
    while True:
        if len(rows) > want:
            cut = np.partition(cos[rows], len(rows) - want)[len(rows) - want]
            top = rows[cos[rows] >= cut]  # every row tied with the last one: ties are broken by row below
        else:
            top = rows
        top = top[np.lexsort((top, -cos[top]))]
        if keep is not None and len(top):
            top = top[keep(top)]
        if len(top) >= k or want >= len(rows):
            return top[:k]
        want *= 4


def _rows_mask(rows: np.ndarray, n: int) -> np.ndarray:
    """A boolean array over ``n`` catalogue rows, True at ``rows``."""
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask


def _graph_nearest(dense: Any, qvec: np.ndarray, alive: np.ndarray, k: int, keep: Any = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rows and cosines of the ``k`` nearest live rows within ``keep`` from an approximate index, most similar
    first: its top ``k``, widened (4x a step) until ``k`` of them pass ``keep`` or every live row was asked for,
    as :func:`_nearest` does for the exact scan."""
    live = int(alive[: len(dense.vectors)].sum())
    want = k if keep is None else 4 * k
    while True:
        rows, cos = dense.search(qvec[None, :], min(want, max(live, 1)), alive)
        rows, cos = rows[0], cos[0]
        found = rows >= 0
        rows, cos = rows[found].astype(np.int64), cos[found]
        if keep is not None and len(rows):
            kept = keep(rows)
            rows, cos = rows[kept], cos[kept]
        if len(rows) >= k or want >= live:
            return rows[:k], cos[:k]
        want *= 4


def result_set(stack: Any, tokens: list[str], qvec: np.ndarray, keep: Any = None,
               limit: int = MATCH_LIMIT, weights: Sequence[float] | None = None) -> ResultSet:
    """The products ``tokens`` / ``qvec`` match (see the module); ``keep(rows) -> bool mask`` restricts them
    (the request's filters) before the pool is taken, so a filter never empties a pool the set could fill.
    ``weights``: one per token (:meth:`BM25Index.score`): they order the lexical matches, never decide them
    (a product matching only a synonym weighted 0.5 still matches)."""
    from shoprank.search.stack import Candidates

    config = stack.config
    scores = stack.bm25.score(tokens, weights)
    alive = stack.catalog.alive
    scores[~alive[: len(scores)]] = 0.0
    lexical = np.flatnonzero(scores > 0)
    if keep is not None and len(lexical):
        lexical = lexical[keep(lexical)]
    lexical = lexical[np.lexsort((lexical, -scores[lexical]))]  # best first, ties by row
    threshold = dense_threshold(config)
    if stack.lexical_only:
        near = dense_rows = np.zeros(0, np.int64)
    elif threshold is None or stack.dense.kind == "hnsw":
        rows, cos = _graph_nearest(stack.dense, qvec, alive, config.dense_k, keep)
        near = rows  # the dense top dense_k within the filters, most similar first
        dense_rows = rows if threshold is None else rows[cos >= threshold]
    else:  # a flat index: exact over the catalogue
        cos_all = stack.dense.vectors @ np.asarray(qvec, np.float32)
        live = alive[: len(cos_all)]
        dense_rows = np.flatnonzero((cos_all >= threshold) & live)
        dense_rows = dense_rows[np.lexsort((dense_rows, -cos_all[dense_rows]))]
        if keep is not None and len(dense_rows):
            dense_rows = dense_rows[keep(dense_rows)]
        near = _nearest(cos_all, live, config.dense_k, keep)
    n = len(alive)  # membership as masks over the catalogue: np.isin hashed every match (64% of a broad query's
    # CPU at 1,000,000 products, where such a query matches 150,000)
    is_lexical = _rows_mask(lexical, n)
    dense_only = dense_rows[~is_lexical[dense_rows]]
    total = len(lexical) + len(dense_only)
    pool = np.asarray(list(dict.fromkeys([*lexical[: config.lexical_k].tolist(), *near.tolist()])), np.int64)
    member = is_lexical[pool] | _rows_mask(dense_rows, n)[pool]
    rest = np.concatenate([lexical[config.lexical_k:], dense_only])
    rest = rest[~_rows_mask(pool, n)[rest]]  # a lexical match past lexical_k may be in the pool by its dense rank
    tail = rest[: max(0, limit - int(member.sum()))].astype(np.int64)
    dense = stack.dense.cosine(qvec, pool) if len(pool) and not stack.lexical_only else \
        np.zeros(len(pool), np.float32)
    return ResultSet(Candidates(pool, scores[pool], dense, total), member, tail, total)
