"""Ranking metrics: the one implementation used by training, evaluation and benchmarks.

Every per-list function takes one ranked list (best first) plus its relevance
information and returns a float. Conventions shared by all of them:

* ``k`` is a positive cutoff or ``None`` for the whole list.
* An id repeated in a ranked list counts only at its first position, so a list
  cannot earn credit twice for the same item.
* A query with nothing relevant scores 0.0 (never NaN). Like ``trec_eval``, drop
  such queries before averaging if they should not count.
* Gains are LINEAR: a grade is used as the gain directly (not ``2**g - 1``).

The leave-one-out helpers (:func:`rank_of_target`, :func:`loo_metrics`) are the
vectorised form for recommendation with one held-out item per user; they agree
with :func:`ndcg_at_k`, :func:`hit_rate_at_k` and :func:`mrr` on the same list.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

Id = Hashable
Ties = Literal["optimistic", "pessimistic", "average"]


def _check_k(k: int | None) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")


def _top(ranked: Sequence[Id], k: int | None) -> list[Id]:
    """The first ``k`` entries with repeats after the first occurrence replaced by ``None``."""
    _check_k(k)
    seen: set[Id] = set()
    out: list[Id] = []
    for item in itertools.islice(ranked, k):
        out.append(None if item in seen else item)
        seen.add(item)
    return out


def discounts(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..n, shape (n,)."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def dcg(gains_in_rank_order: Sequence[float] | np.ndarray, k: int | None = None) -> float:
    """Discounted cumulative gain of gains listed in rank order (linear gain, log2 discount)."""
    _check_k(k)
    g = np.asarray(gains_in_rank_order, dtype=np.float64)[:k]
    return float(g @ discounts(len(g)))


# ---------------------------------------------------------------------------
# Graded relevance
# ---------------------------------------------------------------------------


def ndcg_at_k(
    ranked_ids: Sequence[Id],
    gains: Mapping[Id, float],
    k: int | None = None,
    ideal_gains: Sequence[float] | None = None,
) -> float:
    """NDCG@k with linear gain and ``1/log2(rank+1)`` discount, rank from 1.

    ``gains`` maps judged ids to their grade; unjudged ids have gain 0. The ideal
    DCG sorts the judged gains (``ideal_gains`` if given, else all values of
    ``gains``) in decreasing order. Returns 0.0 when the ideal DCG is 0. Gains
    must be non-negative, which keeps the result in [0, 1].
    """
    pool = list(gains.values()) if ideal_gains is None else list(ideal_gains)
    if any(g < 0 for g in pool) or any(g < 0 for g in gains.values()):
        raise ValueError("gains must be non-negative; shift or clip graded labels before calling ndcg_at_k")
    ideal = dcg(sorted(pool, reverse=True), k)
    if ideal <= 0.0:
        return 0.0
    actual = dcg([0.0 if item is None else float(gains.get(item, 0.0)) for item in _top(ranked_ids, k)])
    return actual / ideal


def ndcg_at_k_batch(
    ranked_gains: np.ndarray, k: int | None = None, ideal_gains: np.ndarray | None = None
) -> np.ndarray:
    """NDCG@k for many queries at once; returns shape (n_queries,).

    ``ranked_gains[q, r]`` is the gain of the item at rank ``r + 1`` for query ``q``
    (pad short lists with 0). ``ideal_gains[q, :]`` holds all judged gains of query
    ``q`` in any order, padded with 0; when omitted the ideal is the best ordering
    of ``ranked_gains`` itself (re-ranking a fixed candidate set).
    """
    _check_k(k)
    ranked = np.atleast_2d(np.asarray(ranked_gains, dtype=np.float64))  # (q, n)
    pool = ranked if ideal_gains is None else np.atleast_2d(np.asarray(ideal_gains, dtype=np.float64))  # (q, m)
    if (ranked < 0).any() or (pool < 0).any():
        raise ValueError("gains must be non-negative")
    ideal_sorted = -np.sort(-pool, axis=1)[:, :k]  # (q, min(m, k))
    ideal = ideal_sorted @ discounts(ideal_sorted.shape[1])  # (q,)
    top = ranked[:, :k]
    actual = top @ discounts(top.shape[1])  # (q,)
    out = np.zeros(len(ranked), dtype=np.float64)
    np.divide(actual, ideal, out=out, where=ideal > 0)
    return out


# ---------------------------------------------------------------------------
# Binary relevance
# ---------------------------------------------------------------------------


def _hits(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None) -> int:
    rel = set(relevant)
    return sum(1 for item in _top(ranked, k) if item is not None and item in rel)


def hit_rate_at_k(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """1.0 if any relevant id is in the top ``k``, else 0.0."""
    return 1.0 if _hits(ranked, relevant, k) > 0 else 0.0


def recall_at_k(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """Relevant ids in the top ``k`` over all relevant ids (0.0 when nothing is relevant)."""
    rel = set(relevant)
    return _hits(ranked, rel, k) / len(rel) if rel else 0.0


def precision_at_k(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """Relevant ids in the top ``k`` over ``k`` (trec_eval's P_k: a list shorter than ``k`` is
    penalised). With ``k=None`` the denominator is the list length."""
    _check_k(k)
    denominator = k if k is not None else len(ranked)
    return _hits(ranked, relevant, k) / denominator if denominator else 0.0


def f1_at_k(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """Harmonic mean of :func:`precision_at_k` and :func:`recall_at_k`."""
    rel = set(relevant)
    p, r = precision_at_k(ranked, rel, k), recall_at_k(ranked, rel, k)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def mrr(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """Reciprocal rank of the first relevant id (rank from 1); 0.0 if none in the top ``k``."""
    rel = set(relevant)
    for rank, item in enumerate(_top(ranked, k), start=1):
        if item is not None and item in rel:
            return 1.0 / rank
    return 0.0


def average_precision(ranked: Sequence[Id], relevant: Iterable[Id], k: int | None = None) -> float:
    """Mean of precision@rank over the ranks of relevant ids, divided by ALL relevant ids
    (trec_eval's ``map`` / ``map_cut``: relevant ids missing from the top ``k`` count as 0)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(_top(ranked, k), start=1):
        if item is not None and item in rel:
            hits += 1
            total += hits / rank
    return total / len(rel)


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray) -> float:
    """ROC AUC from ranks (Mann-Whitney U), tied scores get their average rank.

    A label > 0 is positive. Raises ValueError when only one class is present,
    since the AUC is undefined there.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel() > 0
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {y.size}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} positive and {n_neg} negative labels")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts  # 0-based first rank of each tie group
    ranks = (starts + (counts + 1) / 2.0)[inverse]  # average 1-based rank
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# ---------------------------------------------------------------------------
# Beyond accuracy
# ---------------------------------------------------------------------------


def intra_list_diversity(vectors: np.ndarray) -> float:
    """1 - mean pairwise cosine similarity over pairs i < j of the list's item vectors, shape (n, d).

    0.0 for lists shorter than 2. A zero vector has cosine 0 with everything.
    The result lies in [0, 2] up to rounding (identical vectors give 0, orthogonal ones 1, opposite ones 2);
    it is not clipped, so a wrong similarity shows.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"vectors must have shape (n_items, dim), got {x.shape}")
    n = x.shape[0]
    if n < 2:
        return 0.0
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)  # (n, d)
    sims = unit @ unit.T  # (n, n)
    mean_sim = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - mean_sim)


def category_coverage(categories_of_list: Sequence[Hashable], n_categories: int | None = None) -> float:
    """Distinct categories in the list over the list length, or over ``n_categories``
    (all categories of the catalogue) when given. 0.0 for an empty list."""
    if not categories_of_list:
        return 0.0
    denominator = len(categories_of_list) if n_categories is None else n_categories
    if denominator < 1:
        raise ValueError(f"n_categories must be positive, got {n_categories}")
    return len(set(categories_of_list)) / denominator


def catalog_coverage(lists_of_ids: Iterable[Iterable[Id]], catalog_size: int) -> float:
    """Distinct ids recommended across all lists over the catalogue size."""
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    distinct: set[Id] = set()
    for ids in lists_of_ids:
        distinct.update(ids)
    return len(distinct) / catalog_size


def item_probabilities(counts: Mapping[Id, float], n_users: int | None = None) -> dict[Id, float]:
    """Interaction counts -> probabilities for :func:`novelty`: ``count / n_users`` (the share
    of users who interacted, Zhou et al. 2010) when ``n_users`` is given, else ``count / total``."""
    total = float(n_users) if n_users is not None else float(sum(counts.values()))
    if total <= 0:
        raise ValueError("counts are all zero (or n_users is not positive)")
    return {item: count / total for item, count in counts.items()}


def novelty(
    ranked: Sequence[Id],
    item_popularity: Mapping[Id, float],
    k: int | None = None,
    unseen_probability: float | None = None,
) -> float:
    """Mean self-information ``-log2 p(i)`` over the top ``k`` ids.

    ``item_popularity`` maps ids to probabilities in (0, 1] (see
    :func:`item_probabilities`). An id missing from it raises ValueError unless
    ``unseen_probability`` is given. 0.0 for an empty list.
    """
    top = [item for item in _top(ranked, k) if item is not None]
    if not top:
        return 0.0
    total = 0.0
    for item in top:
        p = item_popularity.get(item, unseen_probability)
        if p is None:
            raise ValueError(f"no popularity for item {item!r}; pass unseen_probability to allow unseen items")
        if not 0.0 < p <= 1.0:
            raise ValueError(f"popularity of item {item!r} must be a probability in (0, 1], got {p}")
        total -= math.log2(p)
    return total / len(top)


# ---------------------------------------------------------------------------
# Leave-one-out, one target per user, vectorised
# ---------------------------------------------------------------------------


def rank_of_target(scores: np.ndarray, targets: np.ndarray, ties: Ties = "pessimistic") -> np.ndarray:
    """1-based rank of each user's target item among all items, shape (n_users,).

    ``scores`` has shape (n_users, n_items) (mask seen items with ``-inf``),
    ``targets`` holds one item index per user. Ties with the target's score:

    * ``"pessimistic"`` (default): #items with a greater or equal score (the target loses
      every tie), so a model that scores everything equally gets no credit.
    * ``"optimistic"``: rank = #items with a strictly greater score + 1 (the target wins ties).
    * ``"average"``: the mean of the two (float ranks).

    NaN scores are rejected.
    """
    s = np.asarray(scores)
    t = np.asarray(targets, dtype=np.int64)
    if s.ndim != 2 or t.shape != (s.shape[0],):
        raise ValueError(f"scores must be (n_users, n_items) and targets (n_users,); got {s.shape} and {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= s.shape[1]):
        raise ValueError(f"targets must be item indices in [0, {s.shape[1]})")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    target_scores = s[np.arange(s.shape[0]), t][:, None]  # (u, 1)
    greater = (s > target_scores).sum(axis=1)  # (u,)
    if ties == "optimistic":
        return greater + 1
    equal = (s == target_scores).sum(axis=1)  # (u,), includes the target itself
    if ties == "pessimistic":
        return greater + equal
    if ties == "average":
        return greater + (equal + 1) / 2.0
    raise ValueError(f"ties must be 'optimistic', 'pessimistic' or 'average', got {ties!r}")


def loo_per_user(ranks: np.ndarray, k: int = 10) -> dict[str, np.ndarray]:
    """Per-user arrays ``ndcg@k``, ``hr@k`` and ``mrr`` from 1-based target ranks."""
    _check_k(k)
    r = np.asarray(ranks, dtype=np.float64)
    if r.size and r.min() < 1:
        raise ValueError("ranks are 1-based and must be >= 1")
    inside = r <= k
    return {
        f"ndcg@{k}": np.where(inside, 1.0 / np.log2(r + 1.0), 0.0),
        f"hr@{k}": inside.astype(np.float64),
        "mrr": 1.0 / r,  # full list, not cut at k
    }


def loo_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """Means over users of ``ndcg@k`` (1/log2(rank+1) if rank <= k), ``hr@k`` and ``mrr`` (1/rank)."""
    if np.asarray(ranks).size == 0:
        raise ValueError("no ranks to average")
    return {name: float(values.mean()) for name, values in loo_per_user(ranks, k).items()}


# ---------------------------------------------------------------------------
# Registry and averaging
# ---------------------------------------------------------------------------

METRICS: dict[str, Callable[..., float]] = {
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "hr": hit_rate_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "f1": f1_at_k,
    "mrr": mrr,
    "map": average_precision,
    "average_precision": average_precision,
    "auc": auc,
    "intra_list_diversity": intra_list_diversity,
    "ild": intra_list_diversity,
    "category_coverage": category_coverage,
    "catalog_coverage": catalog_coverage,
    "novelty": novelty,
}
_TAKES_K = {"ndcg", "hit_rate", "hr", "recall", "precision", "f1", "mrr", "map", "average_precision", "novelty"}


def get_metric(name: str) -> Callable[..., float]:
    """The metric called ``name``; ``"ndcg@10"`` style names bind the cutoff ``k``."""
    base, _, cutoff = name.strip().lower().partition("@")
    if base not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid names: {', '.join(sorted(METRICS))} (add @k for a cutoff)")
    if not cutoff:
        return METRICS[base]
    if base not in _TAKES_K or not cutoff.isdigit() or int(cutoff) < 1:
        takes = ", ".join(sorted(_TAKES_K))
        raise ValueError(f"bad cutoff in {name!r}; '@k' needs a positive integer and one of: {takes}")
    return functools.partial(METRICS[base], k=int(cutoff))


def mean_metrics(per_query: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each metric over queries. Every dict must have the same keys; {} for no queries."""
    if not per_query:
        return {}
    keys = list(per_query[0])
    for i, row in enumerate(per_query):
        if set(row) != set(keys):
            raise ValueError(f"query {i} has metrics {sorted(row)}, expected {sorted(keys)}")
    return {key: float(np.mean([float(row[key]) for row in per_query])) for key in keys}


# ---------------------------------------------------------------------------
# Classification (sentiment, answer matching)
# ---------------------------------------------------------------------------


def accuracy(predicted: Sequence[Hashable] | np.ndarray, truth: Sequence[Hashable] | np.ndarray) -> float:
    """Share of predictions equal to the truth."""
    p, t = np.asarray(predicted), np.asarray(truth)
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"accuracy needs two equal, non-empty sequences; got {p.size} and {t.size}")
    return float(np.mean(p == t))


def f1_binary(predicted: Sequence[bool] | np.ndarray, truth: Sequence[bool] | np.ndarray) -> float:
    """F1 of the positive class (0 when there is no positive prediction and no positive truth)."""
    p, t = np.asarray(predicted).astype(bool), np.asarray(truth).astype(bool)
    tp = float((p & t).sum())
    denominator = float(p.sum() + t.sum())
    return 2 * tp / denominator if denominator else 0.0


def f1_per_class(
    predicted: Sequence[Hashable] | np.ndarray, truth: Sequence[Hashable] | np.ndarray,
    classes: Sequence[Hashable] | None = None,
) -> dict[Hashable, float]:
    """F1 of each class, one-vs-rest (the classes of the truth unless given); 0 for a class never predicted nor
    true."""
    p, t = np.asarray(predicted), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"predicted and truth differ in length: {p.size} vs {t.size}")
    return {c: f1_binary(p == c, t == c) for c in (classes if classes is not None else sorted(set(t.tolist())))}


def macro_f1(
    predicted: Sequence[Hashable] | np.ndarray, truth: Sequence[Hashable] | np.ndarray,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted mean of the per-class F1 over the classes of the truth (or ``classes``); 0 with no class."""
    per_class = f1_per_class(predicted, truth, classes)
    return float(np.mean(list(per_class.values()))) if per_class else 0.0


def macro_auc_ovr(probabilities: np.ndarray, truth: Sequence[int] | np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes present in ``truth``; ``probabilities`` is (n, classes).

    With two classes present this is the binary AUC of either column."""
    probs = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(truth)
    present = sorted(set(t.tolist()))
    if len(present) < 2:
        raise ValueError("AUC needs at least two classes in the truth")
    if len(present) == 2:
        return auc(probs[:, present[1]] - probs[:, present[0]], t == present[1])
    return float(np.mean([auc(probs[:, c], t == c) for c in present]))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the bins' sizes."""
    c, y = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    if c.size == 0:
        return 0.0
    which = np.minimum((c * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - c[mask].mean())
    return float(total)
