"""Diversity: maximal marginal relevance (MMR) over embeddings, and a per-category cap on a page.

One knob, ``λ`` (``lam``), from 0 to 1:

* MMR picks, one at a time, the item with the best
  ``(1 - λ) · relevance − λ · max cosine(item, already picked)``, where relevance is the item's
  score min-max normalised to [0, 1] over the list. λ = 0 is off (the input order comes back
  unchanged); λ = 1 ignores relevance after the first pick.
* The category cap keeps at most ``cap`` items of one category on each page. Unless given, the
  cap follows the knob: ``ceil(page_size · (1 − λ))``, so λ = 0.3 allows 7 of 10, λ = 0.9 allows 1.

Items that land on an earlier page than they had before get the reason ``"added for variety"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from shoprank.rerank._common import check_unique, fresh, mark_moved_up
from shoprank.results import ScoredItem

DEFAULT_DIVERSITY = 0.0
"""λ when a shop has not chosen one: off. The default rule (at most 1 % relative NDCG@10 lost for at least
15 % more intra-list diversity, docs/diversity.md) picked no λ on any shop's sweep, so nothing is traded away
unasked; a shop turns variety on with ``shoprank rules set-diversity`` after a sweep on its own validation
data (``shoprank evaluate recommend|search --diversity-sweep``) suggests a λ. At λ > 0 the top item never
moves, and an item overtakes a more relevant one only when its normalised-relevance deficit is under
λ / (1 − λ) times the extra cosine similarity the other has to the items already picked."""

VARIETY_REASON = "added for variety"


def _check_lam(lam: float) -> None:
    if not 0.0 <= lam <= 1.0 or math.isnan(lam):
        raise ValueError(f"diversity λ must lie between 0 (off) and 1, got {lam}")


def _check_page(page_size: int) -> None:
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")


def normalise_relevance(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1]; all ones when every score is the same."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if not high > low:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)  # zero rows stay zero: similar to nothing


def mmr_order(
    scores: np.ndarray, vectors: np.ndarray, lam: float, top_k: int | None = None
) -> tuple[list[int], list[float]]:
    """Indices MMR picks, in pick order (``top_k`` of them, default all), and each pick's MMR value.

    Ties go to the earlier index. ``vectors`` has one row per score.
    """
    _check_lam(lam)
    n = len(scores)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError(f"vectors must have one row per item: expected ({n}, dim), got {vectors.shape}")
    k = n if top_k is None else max(0, min(top_k, n))
    rel = normalise_relevance(scores)  # (n,)
    unit = _unit_rows(vectors)  # (n, d)
    penalty = np.zeros(n)  # max cosine to the picked items; 0 before the first pick
    taken = np.zeros(n, dtype=bool)
    picks: list[int] = []
    values: list[float] = []
    for step in range(k):
        marginal = (1.0 - lam) * rel - lam * penalty
        marginal[taken] = -np.inf
        # the first pick is the most relevant item by its own score: normalising can round two close scores
        # to one value (1.8e-102 and 0 against a spread of 1), and the top item must never move
        best = int(np.argmax(scores)) if step == 0 else int(np.argmax(marginal))
        picks.append(best)
        values.append(float(marginal[best]))
        taken[best] = True
        sims = unit @ unit[best]  # (n,)
        penalty = sims if step == 0 else np.maximum(penalty, sims)
    return picks, values


def _apply_mmr(items: list[ScoredItem], vectors: np.ndarray, lam: float, top_k: int | None) -> list[ScoredItem]:
    if lam == 0.0 or len(items) < 2:
        return list(items)
    scores = np.array([item.score for item in items], dtype=np.float64)
    picks, values = mmr_order(scores, vectors, lam, top_k)
    for index, value in zip(picks, values, strict=True):
        items[index].parts["mmr"] = value
    chosen = set(picks)
    return [items[i] for i in picks] + [item for i, item in enumerate(items) if i not in chosen]


def mmr(
    items: Sequence[ScoredItem],
    vectors: np.ndarray,
    lam: float = DEFAULT_DIVERSITY,
    *,
    top_k: int | None = None,
    page_size: int = 10,
) -> list[ScoredItem]:
    """Items reordered by MMR; ``vectors[i]`` embeds ``items[i]``.

    Only the first ``top_k`` places are chosen by MMR (default: all); the items not chosen follow in
    their input order. λ = 0 returns the input order. The chosen items get ``parts["mmr"]``.
    """
    _check_lam(lam)
    _check_page(page_size)
    check_unique(items)
    out = _apply_mmr(fresh(items), vectors, lam, top_k)
    mark_moved_up([item.id for item in items], out, VARIETY_REASON, page_size)
    return out


def category_cap_for(lam: float, page_size: int) -> int:
    """The cap that follows the knob: ``ceil(page_size · (1 − λ))``, at least 1."""
    _check_lam(lam)
    return max(1, math.ceil(page_size * (1.0 - lam) - 1e-9))


def _apply_cap(items: list[ScoredItem], categories: Sequence[str], cap: int, page_size: int) -> list[ScoredItem]:
    category_of = {item.id: category for item, category in zip(items, categories, strict=True)}
    out: list[ScoredItem] = []
    waiting = list(items)
    while waiting:
        page: list[ScoredItem] = []
        deferred: list[ScoredItem] = []
        counts: dict[str, int] = {}
        rest = iter(waiting)
        for item in rest:
            category = category_of[item.id]
            if category and counts.get(category, 0) >= cap:
                deferred.append(item)
                continue
            counts[category] = counts.get(category, 0) + 1
            page.append(item)
            if len(page) == page_size:
                break
        shortfall = page_size - len(page)  # too few categories: fill the page with deferred items
        page += deferred[:shortfall]
        out += page
        waiting = deferred[shortfall:] + list(rest)
    return out


def cap_categories(
    items: Sequence[ScoredItem], categories: Sequence[str], cap: int, *, page_size: int = 10
) -> list[ScoredItem]:
    """At most ``cap`` items of one category on each page of ``page_size``, keeping order otherwise.

    An item over the cap moves to the next page where its category has room, ahead of the items that
    were below it. An empty category is never capped. When a page cannot be filled within the cap,
    the best of the items held back fill it.
    """
    _check_page(page_size)
    if cap < 1:
        raise ValueError(f"category cap must be at least 1, got {cap}")
    if len(categories) != len(items):
        raise ValueError(f"categories must have one entry per item: {len(categories)} for {len(items)} items")
    check_unique(items)
    out = _apply_cap(fresh(items), categories, cap, page_size)
    mark_moved_up([item.id for item in items], out, VARIETY_REASON, page_size)
    return out


def diversify(
    items: Sequence[ScoredItem],
    vectors: np.ndarray | None,
    categories: Sequence[str] | None,
    lam: float = DEFAULT_DIVERSITY,
    *,
    category_cap: int | None = None,
    page_size: int = 10,
    top_k: int | None = None,
    copy: bool = True,
) -> list[ScoredItem]:
    """MMR (when ``vectors`` are given) then the category cap (when ``categories`` are given).

    λ = 0 turns both off and returns the input order. ``category_cap`` None follows the knob
    (:func:`category_cap_for`). Reasons are given once, for the net move. ``copy=False``: the caller owns
    ``items`` (each id once), and they get their parts and reasons in place.
    """
    _check_lam(lam)
    _check_page(page_size)
    if copy:
        check_unique(items)
    out = fresh(items) if copy else list(items)
    if lam == 0.0:
        return out
    if vectors is not None:
        out = _apply_mmr(out, vectors, lam, top_k)
    if categories is not None:
        if len(categories) != len(items):
            raise ValueError(f"categories must have one entry per item: {len(categories)} for {len(items)} items")
        category_of = dict(zip((item.id for item in items), categories, strict=True))
        cap = category_cap_for(lam, page_size) if category_cap is None else category_cap
        if cap < 1:
            raise ValueError(f"category cap must be at least 1, got {cap}")
        out = _apply_cap(out, [category_of[item.id] for item in out], cap, page_size)
    mark_moved_up([item.id for item in items], out, VARIETY_REASON, page_size)
    return out
