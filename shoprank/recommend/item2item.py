"""Item-to-item tables: co-visitation ("viewed/bought near each other") and co-purchase.

Both are kept as the top ``keep`` neighbours per item: two (n_items + 1, keep) arrays of
neighbour indices (0 = none) and scores, saved in the bundle as ``.npy``.

* co-visitation: events of the same user at most ``window`` steps apart, each pair weighted
  by the weaker of the two events' ``EVENT_WEIGHTS``, then cosine-normalised
  ``c_ij / sqrt(n_i n_j)`` so that popular items do not neighbour everything.
* bought together: purchases (and carts) of the same user at most ``window`` purchases
  apart; the popularity correction divides by the partner's purchase count:
  ``c_ij / n_j ** beta``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shoprank.recommend.interactions import TYPE_INDEX, TYPE_WEIGHTS, Sequences

BUY_TYPES = (TYPE_INDEX["purchase"], TYPE_INDEX["add_to_cart"])


@dataclass
class NeighbourTable:
    idx: np.ndarray  # (n_items + 1, keep) int32 neighbour indices, 0 = none
    score: np.ndarray  # (n_items + 1, keep) float32, best first

    def row(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        if item >= len(self.idx):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        keep = self.idx[item] > 0
        return self.idx[item][keep].astype(np.int64), self.score[item][keep]

    def grow(self, n_new: int) -> None:
        pad = np.zeros((n_new, self.idx.shape[1]), dtype=self.idx.dtype)
        self.idx = np.vstack([self.idx, pad])
        self.score = np.vstack([self.score, pad.astype(np.float32)])


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
        order = np.argsort(-vals, kind="stable")[:keep]
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


def bought_together(seqs: Sequences, n_items: int, window: int = 5, keep: int = 50,
                    beta: float = 0.5) -> NeighbourTable:
    items, weights = [], []
    for s, t in zip(seqs.items, seqs.types, strict=True):
        buy = np.isin(t, BUY_TYPES)
        items.append(s[buy])
        weights.append(np.ones(int(buy.sum()), np.float32))
    c = _pair_counts(items, weights, n_items, window)
    flat = np.concatenate(items) if items else np.zeros(0, np.int64)
    n = np.bincount(flat, minlength=n_items + 1).astype(np.float32)
    c = c @ sp.diags((1.0 / np.maximum(n, 1.0) ** beta).astype(np.float32))
    return _top(c.tocsr(), keep)
