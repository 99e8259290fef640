"""Which products a query matches: the result set that ``total``, facets and pages are counted over.

A product matches a query when

* it matches lexically: a BM25 score above 0 for any of the query's analysed terms, its spelling-corrected
  terms or the completions of its unfinished last word (:meth:`SearchStack.tokens`), in any indexed field; or
* its text vector's cosine with the query's is at least the stack's dense threshold (:func:`dense_threshold`).

The threshold is calibrated on validation queries only (:func:`calibrate`): the highest cosine that keeps
:data:`KEEP_RECALL` of the relevant validation products the un-thresholded candidate pool holds, and it is
stored in the bundle (``StackConfig.dense_threshold``). A stack without one (the untrained ``baseline``
bundle, bundles published before) uses :data:`BASE_THRESHOLDS` for its encoder, chosen the same way on Home
Depot's validation queries with the untuned encoder (``python -m bench.match_threshold``).
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

KEEP_RECALL = 0.99
"""Share of the relevant validation products in the un-thresholded pool the chosen threshold keeps."""
BASE_THRESHOLDS: dict[str, float | None] = {"biencoder": 0.462, "dual": 0.462, "none": None, "e5": None}
"""Dense threshold of a stack that stores none, by encoder. ``biencoder``/``dual``: the untuned MiniLM's,
chosen on Home Depot's validation queries by :func:`calibrate` (``python -m bench.match_threshold``).
``e5`` (Chinese shops): not calibrated, so None: the dense top ``dense_k`` all match, as before result sets.
``none`` has no vectors: lexical matches only."""
MATCH_LIMIT = 10_000
"""Matching products listed per query (pages, facets and re-ranking reach this far); ``total`` still counts
every match."""
NONSENSE_QUERIES = 200


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` chose and why, recorded in the bundle's training summary."""

    threshold: float
    keep_recall: float
    queries: int  # validation queries with a relevant product in the un-thresholded pool
    pool_recall: float  # share of the relevant validation products in the pool without a threshold
    kept_recall: float  # ... with it
    nonsense_no_dense_match: float  # share of random-letter queries no product's vector reaches
    nonsense_no_match: float  # share of them with no lexical match either (an empty result set)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


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


def nonsense_queries(n: int = NONSENSE_QUERIES, seed: int = 0) -> list[str]:
    """Random-letter queries of one to three words of 4-9 letters: nothing in a shop should match them."""
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
                     for _ in range(rng.randint(1, 3))) for _ in range(n)]


def calibrate(stack: Any, qset: Any, queries: Sequence[str], relevant_gain: float,
              keep_recall: float = KEEP_RECALL, nonsense: Sequence[str] | None = None) -> Calibration:
    """The dense threshold for ``stack`` from validation queries: the highest cosine at which the candidate
    pool (BM25 top ``lexical_k`` united with the dense top ``dense_k`` at or above the threshold) still holds
    ``keep_recall`` of the relevant products (gain >= ``relevant_gain``) that it holds without a threshold.
    Only relevant products found by the dense side alone can be lost, so the threshold is a quantile of
    their cosines. Raises ValueError when no validation query has a relevant product in the pool."""
    if not 0.0 < keep_recall <= 1.0:
        raise ValueError(f"keep_recall must lie in (0, 1], got {keep_recall}")
    if stack.lexical_only:
        raise ValueError("a lexical-only stack has no dense side to calibrate")
    queries = [q for q in queries if any(g >= relevant_gain for g in qset.gains[q].values())]
    vectors = stack.encode_queries(list(queries)) if queries else np.zeros((0, 1), np.float32)
    found = 0  # relevant products in the un-thresholded pool, over all queries
    dense_only: list[float] = []  # cosines of those only the dense side found
    used = relevant_all = 0
    for q, qvec in zip(queries, vectors, strict=True):
        relevant = stack.catalog.rows([p for p, g in qset.gains[q].items() if g >= relevant_gain])
        relevant = relevant[relevant >= 0]
        if not len(relevant):
            continue
        relevant_all += len(relevant)
        cand = stack.candidates(stack.tokens(q), qvec)
        pool = set(cand.rows.tolist())
        lexical = set(cand.rows[cand.bm25 > 0].tolist())
        hits = [int(r) for r in relevant if int(r) in pool]
        if not hits:
            continue
        used += 1
        found += len(hits)
        dense_only += [float(stack.dense.cosine(qvec, np.asarray([r]))[0]) for r in hits if r not in lexical]
    if found == 0:
        raise ValueError("no validation query has a relevant product in the candidate pool: nothing to calibrate on")
    may_lose = int(np.floor(found * (1.0 - keep_recall) + 1e-9))  # relevant products the threshold may drop
    cosines = np.sort(np.asarray(dense_only, np.float64))
    threshold = float(cosines[may_lose]) if may_lose < len(cosines) else 1.0
    threshold = float(np.floor(threshold * 1000) / 1000)  # three decimals, rounded down: keeps at least as many
    lost = int((cosines < threshold).sum())
    words = list(nonsense if nonsense is not None else nonsense_queries())
    no_dense = no_match = 0
    for q, qvec in zip(words, stack.encode_queries(words) if words else [], strict=True):
        best = float(np.max(stack.dense.vectors[stack.catalog.alive] @ qvec)) if stack.catalog.n_live else -1.0
        if best < threshold:
            no_dense += 1
            no_match += int(not (stack.bm25.score(stack.tokens(q)) > 0).any())
    n = max(1, len(words))
    return Calibration(threshold, keep_recall, used, found / relevant_all, (found - lost) / relevant_all,
                       no_dense / n, no_match / n)


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
               limit: int = MATCH_LIMIT) -> ResultSet:
    """The products ``tokens`` / ``qvec`` match (see the module); ``keep(rows) -> bool mask`` restricts them
    (the request's filters) before the pool is taken, so a filter never empties a pool the set could fill."""
    from shoprank.search.stack import Candidates

    config = stack.config
    scores = stack.bm25.score(tokens)
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
    rest = np.concatenate([lexical[config.lexical_k:], dense_only[~np.isin(dense_only, pool)]])
    tail = rest[: max(0, limit - len(pool))].astype(np.int64)
    dense = stack.dense.cosine(qvec, pool) if len(pool) and not stack.lexical_only else \
        np.zeros(len(pool), np.float32)
    return ResultSet(Candidates(pool, scores[pool], dense, total), tail, total)
