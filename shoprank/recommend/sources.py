"""Stage 1 of "recommended for you": candidate sources, each one signal over the whole catalogue.

Every source scores every item for a batch of histories (:meth:`score`, ``(b, n_items + 1)``, -inf for padding,
history items and excluded items) and keeps the best ``k`` (:meth:`retrieve`, the cascade's
:class:`~shoprank.cascade.base.CandidateSource` contract). The ranking stage asks each source for its dense
scores once and reads both the candidates and their features from them.

    sequence   SASRec: the next-item scores of the user's latest events
    covisit    co-visitation neighbours of every history item, summed
    item2item  co-visitation neighbours of the latest three items, recent ones weighted more
    text       cosine of an item's text with the mean text of the user's latest events
    cold       the same for items seen at most twice in training, closest to any of the latest 20 events
    trending   the log's trending items (popularity breaks ties): what a new user gets
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shoprank.cascade.base import Candidates, Request, top_k

CONTENT_WINDOW = 10  # the text source compares with the mean text vector of this many latest events
COLD_WINDOW = 20  # the cold source compares with each of this many latest events
COLD_MAX_COUNT = 2  # items seen at most this often in training are cold
ITEM2ITEM_LAST = 3  # the item-to-item source reads this many latest events
ITEM2ITEM_WEIGHTS = (1.0, 0.6, 0.4)  # weight of the latest, second-latest, third-latest event
HALF_ROWS = 4  # the text source scores batches of up to this many users over half-precision vectors
EXACT_BAND = 256  # ... and recomputes in float32 every item that could be among the best this many
HALF_ERROR = 4e-3  # a bound on |half - float32| of a cosine (inputs 2^-10, output 2^-11; observed <= 3.4e-4)


@dataclass
class Histories:
    """A batch of users as the sources read them: item and event-type index arrays (oldest first) and the items
    each request excludes besides its history."""

    items: list[np.ndarray]
    types: list[np.ndarray]
    exclude: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        if len(self.items) != len(self.types) or (self.exclude is not None and len(self.exclude) != len(self.items)):
            raise ValueError("items, types and exclude must hold one entry per user")

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> np.ndarray:
        return np.array([len(h) for h in self.items], dtype=np.int64)

    def slice(self, start: int, stop: int) -> Histories:
        return Histories(self.items[start:stop], self.types[start:stop],
                         None if self.exclude is None else self.exclude[start:stop])

    def banned(self, n_columns: int) -> np.ndarray:
        """(b, n_columns) True for padding, history items and excluded items."""
        out = np.zeros((len(self), n_columns), dtype=bool)
        out[:, 0] = True
        lists = self.items if self.exclude is None else [np.concatenate([h, x]) for h, x in
                                                          zip(self.items, self.exclude, strict=True)]
        rows = np.repeat(np.arange(len(self)), [len(h) for h in lists])
        if len(rows):
            cols = np.concatenate(lists).astype(np.int64)
            keep = cols < n_columns
            out[rows[keep], cols[keep]] = True
        return out


Resolver = Callable[[Sequence[Request]], Histories]
"""Requests -> the histories the sources read (the user's store events, or the request's own history)."""


class Source:
    """One candidate source; subclasses give :meth:`raw` (the signal, every item) and a ``name``."""

    name = "source"
    keeps_zeros = False  # True: every item with a finite score is a candidate (the signal can be negative)

    def __init__(self, resolve: Resolver | None = None) -> None:
        self.resolve = resolve

    def raw(self, histories: Histories) -> np.ndarray:  # (b, n_items + 1) float32
        raise NotImplementedError

    def score(self, histories: Histories) -> np.ndarray:
        """The signal with padding, history and excluded items at -inf: (b, n_items + 1) float32."""
        scores = np.array(self.raw(histories), dtype=np.float32)
        scores[histories.banned(scores.shape[1])] = -np.inf
        return scores

    def top(self, scores: np.ndarray, k: int) -> Candidates:
        """The best ``k`` of dense ``scores`` per row, best first; items with a zero or -inf signal are left out
        unless the source ranks every item (``keeps_zeros``)."""
        rows = []
        for row in scores:
            usable = row if self.keeps_zeros else np.where(row > 0, row, -np.inf)
            ids = top_k(usable, k)
            rows.append((ids.astype(np.int64), row[ids]))
        return Candidates.from_rows(rows, k)

    def refine(self, histories: Histories, scores: np.ndarray, candidates: np.ndarray) -> None:
        """Make ``scores`` (from :meth:`score`) exact at ``candidates`` (b, C; -1 padded) where a source scores the
        whole catalogue approximately; the others are exact already."""

    def retrieve_histories(self, histories: Histories, k: int) -> Candidates:
        return self.top(self.score(histories), k)

    def retrieve(self, requests: Sequence[Request], k: int) -> Candidates:
        if self.resolve is None:
            raise RuntimeError(f"source {self.name!r} has no resolver: build it with the recommender")
        return self.retrieve_histories(self.resolve(requests), k)


class SequenceSource(Source):
    """SASRec's next-item scores (the sequence-model ANN: an exact dot product over every item vector)."""

    name = "sequence"
    keeps_zeros = True

    def __init__(self, model: object, item_vectors: object, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        self.model, self.item_vectors = model, item_vectors

    def raw(self, histories: Histories) -> np.ndarray:
        import torch

        from shoprank.recommend.interactions import pad_left

        model = self.model
        n = self.item_vectors.shape[0]  # type: ignore[attr-defined]
        out = np.full((len(histories), n), -np.inf, dtype=np.float32)
        nonempty = [i for i, h in enumerate(histories.items) if len(h)]
        if nonempty:
            max_len = model.cfg.max_len  # type: ignore[attr-defined]
            with torch.no_grad():
                h = torch.from_numpy(pad_left([histories.items[i] for i in nonempty], max_len))
                t = torch.from_numpy(pad_left([histories.types[i] for i in nonempty], max_len))
                out[nonempty] = model.score(h, t, self.item_vectors).numpy()  # type: ignore[attr-defined]
        return out


class CovisitSource(Source):
    """The sum of co-visitation scores from every history item (the item-kNN signal)."""

    name = "covisit"

    def __init__(self, covisit: sp.csr_matrix, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        self.covisit = covisit

    def raw(self, histories: Histories) -> np.ndarray:
        n = self.covisit.shape[0]
        rows = np.repeat(np.arange(len(histories)), histories.lengths())
        cols = np.concatenate(histories.items) if len(rows) else np.zeros(0, np.int64)
        h = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(histories), n))
        return np.asarray((h @ self.covisit).todense(), dtype=np.float32)


class ItemToItemSource(Source):
    """Co-visitation neighbours of the latest events, each neighbour list scaled to its best (1.0), the latest
    event weighted most (``ITEM2ITEM_WEIGHTS``)."""

    name = "item2item"

    def __init__(self, covisit: sp.csr_matrix, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        best = np.asarray(covisit.max(axis=1).todense()).ravel()
        self.scaled = (sp.diags(np.where(best > 0, 1.0 / np.maximum(best, 1e-12), 0.0).astype(np.float32))
                       @ covisit).tocsr()

    def raw(self, histories: Histories) -> np.ndarray:
        n = self.scaled.shape[0]
        rows, cols, vals = [], [], []
        for r, h in enumerate(histories.items):
            for j, item in enumerate(h[::-1][:ITEM2ITEM_LAST]):
                rows.append(r)
                cols.append(int(item))
                vals.append(ITEM2ITEM_WEIGHTS[j])
        w = sp.csr_matrix((np.array(vals, np.float32), (np.array(rows, np.int64), np.array(cols, np.int64))),
                          shape=(len(histories), n))
        return np.asarray((w @ self.scaled).todense(), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class TextSource(Source):
    """Cosine of every item's text vector with the mean text vector of the user's latest ``CONTENT_WINDOW``
    events (unit vectors in, so the cosine is a dot product).

    A request's one user reads the catalogue's vectors in half precision (a third of the time on one core: the
    scan is bound by memory), then recomputes in float32 every item that could be among its best
    ``EXACT_BAND`` (:data:`HALF_ERROR` bounds the difference) and, through :meth:`refine`, every candidate the
    ranking stage keeps: the source's list and every score the ranker reads are the float32 ones. Larger
    batches (training) read the float32 vectors at once."""

    name = "text"

    def __init__(self, text_vectors: np.ndarray, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        self.text_vectors = text_vectors
        norm = float(np.linalg.norm(text_vectors, axis=1).max(initial=0.0))
        # a half-precision copy where it pays and its error bound holds (vectors of length at most ~1)
        self._half, self._exact = None, False
        if len(text_vectors) > 4 * EXACT_BAND and norm <= 1.01:
            import torch

            self._half = torch.from_numpy(np.ascontiguousarray(text_vectors, dtype=np.float16))

    def users(self, histories: Histories) -> np.ndarray:
        """Each history's unit mean text vector of its latest events (zero for an empty one): (b, d)."""
        d = self.text_vectors.shape[1]
        if not len(histories):
            return np.zeros((0, d), np.float32)
        return _unit(np.stack([self.text_vectors[h[-CONTENT_WINDOW:]].mean(axis=0) if len(h)
                               else np.zeros(d, np.float32) for h in histories.items]))

    def _halved(self, histories: Histories) -> bool:
        return self._half is not None and 0 < len(histories) <= HALF_ROWS and not self._exact

    def retrieve_histories(self, histories: Histories, k: int) -> Candidates:
        if k <= EXACT_BAND:
            return super().retrieve_histories(histories, k)
        self._exact = True  # a list longer than the exact band: every score in float32
        try:
            return super().retrieve_histories(histories, k)
        finally:
            self._exact = False

    def raw(self, histories: Histories) -> np.ndarray:
        users = self.users(histories)
        if not self._halved(histories):
            return users @ self.text_vectors.T  # (b, N+1)
        import torch

        scores = (torch.from_numpy(users.astype(np.float16)) @ self._half.T).float().numpy()  # type: ignore[union-attr]
        for row, user in zip(scores, users, strict=True):
            floor = np.partition(row, -EXACT_BAND)[-EXACT_BAND] - 2 * HALF_ERROR
            band = np.flatnonzero(row >= floor)
            row[band] = (user[None] @ self.text_vectors[band].T)[0]  # as the float32 path computes it
        return scores

    def refine(self, histories: Histories, scores: np.ndarray, candidates: np.ndarray) -> None:
        if not self._halved(histories):
            return
        for row, user, cands in zip(scores, self.users(histories), candidates, strict=True):
            cols = cands[cands >= 0]
            cols = cols[np.isfinite(row[cols])]
            row[cols] = (user[None] @ self.text_vectors[cols].T)[0]


class ColdSource(Source):
    """Items seen at most ``COLD_MAX_COUNT`` times in training: the best text cosine with any of the user's
    latest ``COLD_WINDOW`` events (their ID embeddings learnt next to nothing, so text must speak for them)."""

    name = "cold"

    def __init__(self, text_vectors: np.ndarray, counts: np.ndarray, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        self.text_vectors = text_vectors
        cols = np.flatnonzero(counts <= COLD_MAX_COUNT)
        self.cols = cols[cols > 0]
        self.col_vectors = np.ascontiguousarray(text_vectors[self.cols])

    def raw(self, histories: Histories) -> np.ndarray:
        out = np.zeros((len(histories), len(self.text_vectors)), dtype=np.float32)
        if not len(self.cols) or not len(histories):
            return out
        recent = latest(histories.items, COLD_WINDOW)  # (b, w), 0 = none
        sims = self.text_vectors[recent] @ self.col_vectors.T  # (b, w, n_cold)
        sims[recent == 0] = -np.inf
        best = sims.max(axis=1)  # (b, n_cold)
        out[:, self.cols] = np.where(np.isfinite(best), best, 0.0)
        return out


def latest(histories: Sequence[np.ndarray], window: int) -> np.ndarray:
    """The latest ``window`` items of each history, right-aligned, 0 where a history is shorter: (b, window)."""
    out = np.zeros((len(histories), window), dtype=np.int64)
    for r, h in enumerate(histories):
        tail = h[-window:]
        if len(tail):
            out[r, window - len(tail):] = tail
    return out


def trending_signal(trending: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """The new-user list's scores: trending, all-time popularity breaking ties."""
    return np.asarray(trending, np.float32) + 1e-3 * np.asarray(popularity, np.float32)


class TrendingSource(Source):
    """The log's trending items, popularity breaking ties: the same list for everyone, history excluded."""

    name = "trending"

    def __init__(self, trending: np.ndarray, popularity: np.ndarray, resolve: Resolver | None = None) -> None:
        super().__init__(resolve)
        self.signal = trending_signal(trending, popularity)

    def raw(self, histories: Histories) -> np.ndarray:
        return np.broadcast_to(self.signal, (len(histories), len(self.signal)))
