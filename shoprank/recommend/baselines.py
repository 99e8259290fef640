"""Baselines and peers, one contract: ``fit(train, n_items)`` then ``score(histories)``.

``score`` takes a batch of user histories (item index arrays, oldest first) and returns a
(batch, n_items + 1) array of scores; column 0 (padding) is never recommended. ``rows``
names the users' rows in the fitted sequences, for models that cannot fold a new history in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from shoprank.cascade.base import top_k
from shoprank.recommend.interactions import Sequences


class SequenceScorer(Protocol):
    name: str

    def fit(self, train: Sequences, n_items: int) -> None: ...

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray: ...


def _history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(histories), n_items + 1))
    m.data[:] = 1.0
    return m


class RandomScorer:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.n_items = 0

    def fit(self, train: Sequences, n_items: int) -> None:
        self.n_items = n_items

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        return self.rng.random((len(histories), self.n_items + 1), dtype=np.float32)


class PopularScorer:
    """Most events in the training log first (ties broken by a tiny random jitter)."""

    name = "most popular"

    def fit(self, train: Sequences, n_items: int) -> None:
        counts = np.bincount(np.concatenate(train.items), minlength=n_items + 1).astype(np.float32)
        jitter = np.random.default_rng(0).random(n_items + 1, dtype=np.float32) * 1e-3
        self.counts = counts + jitter

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(histories), len(self.counts))).copy()


class ItemKNNScorer:
    """Item-kNN over co-occurrence cosine: sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|), top ``neighbours`` per item."""

    name = "item-kNN"

    def __init__(self, neighbours: int = 200) -> None:
        self.neighbours = neighbours

    def fit(self, train: Sequences, n_items: int) -> None:
        x = train.matrix(n_items)  # users x items, binary
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        sim = (x.T @ x).tocsr().astype(np.float32)
        sim.setdiag(0)
        sim.eliminate_zeros()
        sim = sp.diags(1 / norms) @ sim @ sp.diags(1 / norms)
        self.sim = _top_k_per_row(sim.tocsr(), self.neighbours)

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        h = _history_matrix(histories, self.sim.shape[0] - 1)
        return np.asarray((h @ self.sim).todense(), dtype=np.float32)


def _top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        vals, cols = m.data[lo:hi], m.indices[lo:hi]
        if len(vals) > k:
            keep = top_k(vals, k)
            vals, cols = vals[keep], cols[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=m.shape, dtype=np.float32
    )


class ALSScorer:
    """``implicit``'s ALS; a new history is folded in by recomputing the user's factors (no retraining)."""

    name = "implicit ALS"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15,
                 seed: int = 0) -> None:
        self.params = dict(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations)
        self.seed = seed

    def fit(self, train: Sequences, n_items: int) -> None:
        from implicit.als import AlternatingLeastSquares

        self.n_items = n_items
        self.model = AlternatingLeastSquares(**self.params, random_state=self.seed, use_gpu=False, num_threads=1)
        self.model.fit(train.matrix(n_items), show_progress=False)

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        h = _history_matrix(histories, self.n_items)
        users = self.model.recalculate_user(np.arange(len(histories)), h)
        return users @ self.model.item_factors.T


class BPRScorer:
    """``implicit``'s BPR. It cannot fold in a new history: it scores the users' fitted rows."""

    name = "implicit BPR"

    def __init__(self, factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 100, seed: int = 0) -> None:
        self.params = dict(factors=factors, learning_rate=learning_rate, regularization=regularization,
                           iterations=iterations)
        self.seed = seed

    def fit(self, train: Sequences, n_items: int) -> None:
        from implicit.bpr import BayesianPersonalizedRanking

        self.model = BayesianPersonalizedRanking(**self.params, random_state=self.seed, use_gpu=False,
                                                 num_threads=1)
        self.model.fit(train.matrix(n_items), show_progress=False)

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        if rows is None:
            raise ValueError("BPR scores only users it was fitted on: pass their rows")
        return self.model.user_factors[np.asarray(rows)] @ self.model.item_factors.T


class TextMeanScorer:
    """The untuned text encoder: cosine between an item and the mean of the user's history vectors."""

    name = "MiniLM mean of history"

    def __init__(self, text_vectors: np.ndarray) -> None:
        self.vectors = text_vectors  # (n_items + 1, dim), L2-normalised, row 0 zeros

    def fit(self, train: Sequences, n_items: int) -> None:
        pass

    def score(self, histories: Sequence[np.ndarray], rows: Sequence[int] | None = None) -> np.ndarray:
        users = np.stack([self.vectors[h].mean(axis=0) if len(h) else self.vectors[0] for h in histories])
        return users @ self.vectors.T
