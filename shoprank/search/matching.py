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


def dense_matches(stack: Any, qvec: np.ndarray, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Live rows whose cosine with ``qvec`` is at least ``threshold``, most similar first, and their cosines.

    Exact over the catalogue for a flat index; an HNSW index (large catalogues) answers from its top
    ``dense_k``. ``threshold`` None: the top ``dense_k`` all match (an uncalibrated encoder)."""
    if stack.lexical_only:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    alive = stack.catalog.alive
    if threshold is None or stack.dense.kind == "hnsw":
        rows, cos = stack.dense.search(qvec[None, :], stack.config.dense_k, alive)
        rows, cos = rows[0], cos[0]
        keep = rows >= 0
        if threshold is not None:
            keep &= cos >= threshold
        return rows[keep].astype(np.int64), cos[keep].astype(np.float32)
    cos = stack.dense.vectors @ np.asarray(qvec, np.float32)
    rows = np.flatnonzero((cos >= threshold) & alive[: len(cos)])
    order = np.lexsort((rows, -cos[rows]))
    return rows[order].astype(np.int64), cos[rows[order]].astype(np.float32)


@dataclass
class ResultSet:
    """A query's matching set, split in two: ``pool`` (the stack's :class:`~shoprank.search.stack.Candidates`:
    the BM25 top ``lexical_k`` and the dense top ``dense_k`` of the matching set, which the ranker orders) and
    ``tail`` (the rest, up to :data:`MATCH_LIMIT` in all, lexical matches in BM25 order, then dense ones by
    cosine). ``total``: every matching product."""

    pool: Any
    tail: np.ndarray
    total: int


def result_set(stack: Any, tokens: list[str], qvec: np.ndarray, keep: Any = None,
               limit: int = MATCH_LIMIT, weights: Sequence[float] | None = None) -> ResultSet:
    """The products ``tokens`` / ``qvec`` match (see the module); ``keep(rows) -> bool mask`` restricts them
    (the request's filters) before the pool is taken, so a filter never empties a pool the set could fill.
    ``weights``: one per token (:meth:`BM25Index.score`): they order the lexical matches, never decide them
    (a product matching only a synonym weighted 0.5 still matches)."""
    from shoprank.search.stack import Candidates

    config = stack.config
    scores = stack.bm25.score(tokens, weights)
    scores[~stack.catalog.alive[: len(scores)]] = 0.0
    lexical = np.flatnonzero(scores > 0)
    dense_rows, _ = dense_matches(stack, qvec, dense_threshold(config))
    if keep is not None:
        lexical = lexical[keep(lexical)] if len(lexical) else lexical
        dense_rows = dense_rows[keep(dense_rows)] if len(dense_rows) else dense_rows
    lexical = lexical[np.lexsort((lexical, -scores[lexical]))]  # best first, ties by row
    dense_only = dense_rows[~np.isin(dense_rows, lexical)]
    total = len(lexical) + len(dense_only)
    pool = np.asarray(list(dict.fromkeys([*lexical[: config.lexical_k].tolist(),
                                          *dense_rows[: config.dense_k].tolist()])), np.int64)
    rest = np.concatenate([lexical[config.lexical_k:], dense_only])
    rest = rest[~np.isin(rest, pool)]  # a lexical match past lexical_k may be in the pool by its dense rank
    tail = rest[: max(0, limit - len(pool))].astype(np.int64)
    dense = stack.dense.cosine(qvec, pool) if len(pool) and not stack.lexical_only else \
        np.zeros(len(pool), np.float32)
    return ResultSet(Candidates(pool, scores[pool], dense, total), tail, total)
