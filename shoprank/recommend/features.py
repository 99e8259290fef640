"""Stage 2's input for "recommended for you": one feature row per (user, candidate).

The candidates of a request are the union of its sources' top lists. Each row holds every source's score for the
candidate (sources score every item, so a candidate one source did not retrieve still has the others' scores) and
its rank in each source's list (``RANK_MISSING`` when that source did not retrieve it), then what the user's
history and the item say:

    text_last, text_max       text cosine with the latest event; the best over the latest 20 events
    match_recency             how many events back that best match lies (0: the latest)
    covisit_last              co-visitation strength with the latest event
    popularity, trend         log(1 + weighted training events), log(1 + events in the log's last week)
    trend_share               the week's events over all events: is it rising
    coldness                  log(1 + the item's training occurrences)
    category_affinity         share of the history in the candidate's category (NaN: no category known)
    price_vs_user             (log price - mean log price of the history) / (sd + 0.1) (NaN: no prices known)
    history_length, n_sources how long the history is; how many sources found the candidate

Missing values are NaN, which LightGBM treats as missing. The names are recorded in the bundle with the ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprank.recommend.sources import Histories, latest

RANK_MISSING = 1000.0  # the rank of a candidate in a source that did not retrieve it
MATCH_WINDOW = 20

ITEM_FEATURES = ("text_last", "text_max", "match_recency", "covisit_last", "popularity", "trend", "trend_share",
                 "coldness", "category_affinity", "price_vs_user", "history_length", "n_sources")


def feature_names(sources: Sequence[str]) -> list[str]:
    """The columns of the feature matrix, in order."""
    return [f"{s}_{what}" for s in sources for what in ("score", "rank")] + list(ITEM_FEATURES)


@dataclass
class ItemTable:
    """What the features read about every item (row 0: padding): unit text vectors, weighted training
    popularity, the last week's events, training occurrences, a category code (-1: none) and a price (NaN: none),
    and the raw co-visitation matrix."""

    text_vectors: np.ndarray
    popularity: np.ndarray
    trending: np.ndarray
    counts: np.ndarray
    categories: np.ndarray
    prices: np.ndarray
    covisit: sp.csr_matrix


def item_facts(products: Sequence[Any], ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Category codes (int32, -1: none) and prices (float32, NaN: none) of the items ``ids`` in index order
    (row 0: padding), from ``products``; and the category names the codes index."""
    by_id = {p.id: p for p in products}
    names: dict[str, int] = {}
    codes = np.full(len(ids) + 1, -1, dtype=np.int32)
    prices = np.full(len(ids) + 1, np.nan, dtype=np.float32)
    for row, item_id in enumerate(ids, start=1):
        p = by_id.get(item_id)
        if p is None:
            continue
        if p.category:
            codes[row] = names.setdefault(p.category, len(names))
        if p.price is not None and p.price >= 0:
            prices[row] = p.price
    return codes, prices, list(names)


def union(tops: Sequence[np.ndarray]) -> np.ndarray:
    """Each row's distinct candidate ids over the sources' top lists ``tops`` (each (b, k), -1 padded), in
    ascending id order, -1 padded to the longest row: (b, C)."""
    ids = np.concatenate(tops, axis=1)  # (b, sum k)
    ids = np.sort(ids, axis=1)
    dup = np.zeros_like(ids, dtype=bool)
    dup[:, 1:] = ids[:, 1:] == ids[:, :-1]
    ids = np.where(dup | (ids < 0), np.iinfo(np.int64).max, ids)
    ids = np.sort(ids, axis=1)
    width = max(1, int((ids != np.iinfo(np.int64).max).sum(axis=1).max(initial=0)))
    ids = ids[:, :width]
    return np.where(ids == np.iinfo(np.int64).max, -1, ids)


def build(histories: Histories, candidates: np.ndarray, dense: dict[str, np.ndarray],
          ranks: dict[str, np.ndarray], items: ItemTable) -> np.ndarray:
    """The feature tensor (b, C, F) for ``candidates`` (b, C; -1 padded), the columns of
    :func:`feature_names` over the sources of ``dense`` (name -> (b, n_items + 1) scores) and ``ranks``
    (name -> (b, C) rank of each candidate in that source's list, ``RANK_MISSING`` where absent)."""
    b, c = candidates.shape
    safe = np.maximum(candidates, 0)
    cols: list[np.ndarray] = []
    found = np.zeros((b, c), dtype=np.float32)
    for name, scores in dense.items():
        s = np.take_along_axis(scores, safe, axis=1)
        cols.append(np.where(np.isfinite(s), s, np.nan).astype(np.float32))
        r = ranks[name]
        cols.append(r.astype(np.float32))
        found += r < RANK_MISSING
    text_last = np.full((b, c), np.nan, np.float32)
    text_max = np.full((b, c), np.nan, np.float32)
    recency = np.full((b, c), np.nan, np.float32)
    affinity = np.full((b, c), np.nan, np.float32)
    price = np.full((b, c), np.nan, np.float32)
    lengths = histories.lengths()
    cand_cat = items.categories[safe]
    cand_price = np.log1p(items.prices[safe])
    recent = latest(histories.items, MATCH_WINDOW)  # (b, w), right-aligned, 0 = none
    sims = np.matmul(items.text_vectors[recent], items.text_vectors[safe].transpose(0, 2, 1))  # (b, w, C)
    sims[recent == 0] = -np.inf
    has = lengths > 0
    text_last[has] = sims[has, -1]
    best = sims.max(axis=1)
    text_max[has] = best[has]
    recency[has] = (MATCH_WINDOW - 1 - sims.argmax(axis=1))[has]
    for r, h in enumerate(histories.items):
        if not len(h):
            continue
        cats = items.categories[h]
        known = cats[cats >= 0]
        if len(known):
            share = np.bincount(known, minlength=int(items.categories.max()) + 1) / len(known)
            affinity[r] = np.where(cand_cat[r] >= 0, share[np.maximum(cand_cat[r], 0)], np.nan)
        hp = np.log1p(items.prices[h])
        hp = hp[np.isfinite(hp)]
        if len(hp):
            price[r] = (cand_price[r] - hp.mean()) / (hp.std() + 0.1)
    last = np.array([h[-1] if len(h) else 0 for h in histories.items], dtype=np.int64)
    covisit_last = np.take_along_axis(np.asarray(items.covisit[last].todense(), dtype=np.float32), safe, axis=1)
    pop, trend = items.popularity[safe], items.trending[safe]
    cols += [text_last, text_max, recency, covisit_last, np.log1p(pop), np.log1p(trend), trend / (pop + 1.0),
             np.log1p(items.counts[safe]), affinity, price,
             np.broadcast_to(lengths[:, None], (b, c)).astype(np.float32), found]
    return np.stack([np.asarray(x, dtype=np.float32) for x in cols], axis=2)


def source_ranks(candidates: np.ndarray, tops: dict[str, np.ndarray], n_columns: int) -> dict[str, np.ndarray]:
    """Each candidate's 1-based rank in each source's top list (``RANK_MISSING`` where absent): name -> (b, C)."""
    b = len(candidates)
    safe = np.maximum(candidates, 0)
    out = {}
    rows = np.arange(b)[:, None]
    for name, top in tops.items():
        dense = np.full((b, n_columns), RANK_MISSING, dtype=np.float32)
        k = top.shape[1]
        place = np.broadcast_to(np.arange(1, k + 1, dtype=np.float32), top.shape)
        keep = top >= 0
        dense[np.broadcast_to(rows, top.shape)[keep], top[keep]] = place[keep]
        out[name] = np.take_along_axis(dense, safe, axis=1)
    return out
