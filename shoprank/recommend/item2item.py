"""Item-to-item tables: co-visitation ("viewed/bought near each other") and co-purchase.

Both are kept as the top ``keep`` neighbours per item: two (n_items + 1, keep) arrays of
neighbour indices (0 = none) and scores, saved in the bundle as ``.npy``.

* co-visitation: events of the same user at most ``window`` steps apart, each pair weighted
  by the weaker of the two events' ``EVENT_WEIGHTS``, then cosine-normalised
  ``c_ij / sqrt(n_i n_j)`` so that popular items do not neighbour everything.
* bought together (:func:`basket_pairs`): purchases in the same basket, i.e. the same session
  (``session_id``) or, without one, a user's purchases at most :data:`BASKET_GAP` seconds apart.
  A pair counts only with :data:`MIN_SUPPORT` baskets of :data:`MIN_USERS` different users behind it
  (so one shopper's habits never make a "bought together"); partners are ranked by confidence,
  ``baskets with both / baskets with the item``, then by support, and the table keeps the support.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp

from shoprank.cascade.base import top_k
from shoprank.data.records import Event
from shoprank.recommend.interactions import TYPE_WEIGHTS, Sequences

BASKET_GAP = 30 * 60.0
"""Without a ``session_id``, a user's purchases at most this many seconds apart share a basket (the usual
30-minute session cut)."""
MIN_SUPPORT = 2  # baskets that must hold a pair before it is shown
MIN_USERS = 2  # ... and the different users they come from
MAX_BASKET = 30  # distinct items of a basket that pair up (a larger basket pairs its first 30)


@dataclass
class NeighbourTable:
    idx: np.ndarray  # (n_items + 1, keep) int32 neighbour indices, 0 = none
    score: np.ndarray  # (n_items + 1, keep) float32, best first
    support: np.ndarray | None = None  # (n_items + 1, keep) float32 baskets behind each pair (bought together)

    def row(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        if item >= len(self.idx):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        keep = self.idx[item] > 0
        return self.idx[item][keep].astype(np.int64), self.score[item][keep]

    def row_support(self, item: int) -> np.ndarray | None:
        if self.support is None or item >= len(self.idx):
            return None
        return self.support[item][self.idx[item] > 0]

    def grow(self, n_new: int) -> None:
        pad = np.zeros((n_new, self.idx.shape[1]), dtype=self.idx.dtype)
        self.idx = np.vstack([self.idx, pad])
        self.score = np.vstack([self.score, pad.astype(np.float32)])
        if self.support is not None:
            self.support = np.vstack([self.support, pad.astype(np.float32)])


def _pair_counts(items: list[np.ndarray], weights: list[np.ndarray], n_items: int, window: int) -> sp.csr_matrix:
    """Symmetric (n+1, n+1) sum of pair weights for items at most ``window`` apart in a sequence."""
    flat = np.concatenate(items) if items else np.zeros(0, np.int64)
    w = np.concatenate(weights) if weights else np.zeros(0, np.float32)
    owner = np.repeat(np.arange(len(items)), [len(s) for s in items])
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = owner[d:] == owner[:-d]
        a, b = flat[:-d][same], flat[d:][same]
        v = np.minimum(w[:-d][same], w[d:][same])
        diff = a != b
        rows += [a[diff], b[diff]]
        cols += [b[diff], a[diff]]
        vals += [v[diff], v[diff]]
    if not rows:
        return sp.csr_matrix((n_items + 1, n_items + 1), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items + 1, n_items + 1), dtype=np.float32)


def _top(m: sp.csr_matrix, keep: int) -> NeighbourTable:
    idx = np.zeros((m.shape[0], keep), dtype=np.int32)
    score = np.zeros((m.shape[0], keep), dtype=np.float32)
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if lo == hi:
            continue
        vals, cols = m.data[lo:hi], m.indices[lo:hi]
        order = top_k(vals, keep)
        idx[r, :len(order)] = cols[order]
        score[r, :len(order)] = vals[order]
    return NeighbourTable(idx, score)


def covisitation(seqs: Sequences, n_items: int, window: int = 3, keep: int = 50) -> NeighbourTable:
    weights = [TYPE_WEIGHTS[t] for t in seqs.types]
    c = _pair_counts(seqs.items, weights, n_items, window)
    flat = np.concatenate(seqs.items) if len(seqs) else np.zeros(0, np.int64)
    n = np.bincount(flat, weights=np.concatenate(weights) if len(seqs) else None, minlength=n_items + 1)
    norm = 1.0 / np.sqrt(np.maximum(n, 1e-9))
    c = sp.diags(norm.astype(np.float32)) @ c @ sp.diags(norm.astype(np.float32))
    return _top(c.tocsr(), keep)


def baskets(events: Iterable[Event], index: Mapping[str, int], gap: float = BASKET_GAP
            ) -> list[tuple[str, list[int]]]:
    """(user, distinct item indices) of every basket in time-ordered ``events``: the purchases of one session,
    or, for purchases without a session, of one user with no more than ``gap`` seconds between them."""
    open_baskets: dict[tuple[str, str | None], tuple[float, list[int]]] = {}
    out: list[tuple[str, list[int]]] = []
    for e in events:
        if e.type != "purchase" or e.item_id not in index:
            continue
        key = (e.user_id, e.session_id)
        current = open_baskets.get(key)
        if current is not None and (e.session_id is not None or e.timestamp - current[0] <= gap):
            current[1].append(index[e.item_id])
            open_baskets[key] = (e.timestamp, current[1])
            continue
        if current is not None:
            out.append((e.user_id, current[1]))
        open_baskets[key] = (e.timestamp, [index[e.item_id]])
    out += [(key[0], items) for key, (_, items) in open_baskets.items()]
    return [(user, list(dict.fromkeys(items))) for user, items in out]


def basket_pairs(events: Iterable[Event], index: Mapping[str, int], n_items: int, *, gap: float = BASKET_GAP,
                 min_support: int = MIN_SUPPORT, min_users: int = MIN_USERS, keep: int = 50
                 ) -> tuple[NeighbourTable, dict[str, int]]:
    """The bought-together table of ``events`` (module docstring): score = confidence, ``support`` = baskets.
    Returns the table and counts (baskets, pairs kept)."""
    found = baskets(events, index, gap)
    holding: Counter[int] = Counter()  # baskets holding each item
    support: Counter[tuple[int, int]] = Counter()
    users: dict[tuple[int, int], str | None] = {}  # the one user behind a pair so far; None once two
    for user, items in found:
        holding.update(items)
        for a, b in combinations(sorted(items[:MAX_BASKET]), 2):
            support[(a, b)] += 1
            if users.get((a, b), user) != user:
                users[(a, b)] = None
            else:
                users.setdefault((a, b), user)
    kept = [(a, b, n) for (a, b), n in support.items()
            if n >= min_support and (min_users <= 1 or users[(a, b)] is None)]
    idx = np.zeros((n_items + 1, keep), np.int32)
    score = np.zeros((n_items + 1, keep), np.float32)
    count = np.zeros((n_items + 1, keep), np.float32)
    partners: dict[int, list[tuple[float, int, int]]] = {}
    for a, b, n in kept:
        partners.setdefault(a, []).append((n / holding[a], n, b))
        partners.setdefault(b, []).append((n / holding[b], n, a))
    for item, rows in partners.items():
        rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
        rows = rows[:keep]
        idx[item, :len(rows)] = [r[2] for r in rows]
        score[item, :len(rows)] = [r[0] for r in rows]
        count[item, :len(rows)] = [r[1] for r in rows]
    return NeighbourTable(idx, score, count), {"baskets": len(found), "pairs": len(kept)}
