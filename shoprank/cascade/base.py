"""The contracts of the cascade: what is asked, what is answered, and the shapes of its stages.

A :class:`Request` says what is asked (surface, query, user and history, item, filters, page); a
:class:`Page` says what was answered and why. Every stage is batch-shaped, the way implicit's
``RecommenderBase`` gives every model one shape: a :class:`CandidateSource` maps requests to
``(ids [b, k], scores [b, k])``, a :class:`Ranker` scores feature rows of candidate groups.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from shoprank.data.limits import LIMITS
from shoprank.data.records import Event
from shoprank.results import ScoredItem, SearchFilters

SURFACES = ("search", "recommend", "similar", "bought_together")
"""What the cascade answers: a query, "for you", items like one item, items bought with one item."""


def clean_query(q: str) -> tuple[str, bool]:
    """NFC, control characters dropped, whitespace collapsed, cut at the contract's length. -> (text, cut)."""
    text = unicodedata.normalize("NFC", q)
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > LIMITS.max_query_chars:
        return text[: LIMITS.max_query_chars], True
    return text, False


@dataclass(frozen=True)
class Request:
    """One question to the cascade. ``page`` is 1-based; ``per_page`` is the page the answer shows.

    ``history``: the user's events to use instead of the store's (evaluation hides the targets this way).
    ``facets``: the caller also wants the ids the facet counts are made over (:attr:`Page.facet_ids`).
    ``diversity`` overrides the shop's re-ranking λ for this request; ``explore`` lets exploration in
    (online answers only: batch runs and evaluation must repeat). ``seed`` fixes what exploration draws.
    ``limit``: answer the first ``limit`` results of the list instead of one page (batch runs and evaluation);
    re-ranking still arranges the list in pages of ``per_page``, so the first ``per_page`` equal page 1.
    ``sort`` (search): ``relevance`` or an explicit order of the matching set (``shoprank.cascade.sorting``).
    """

    surface: str
    query: str = ""
    user_id: str | None = None
    item_id: str | None = None
    history: tuple[Event, ...] | None = None
    filters: SearchFilters | None = None
    page: int = 1
    per_page: int = 10
    exclude: frozenset[str] = frozenset()
    diversity: float | None = None
    facets: bool = False
    explore: bool = False
    seed: int | None = None
    limit: int | None = None
    sort: str = "relevance"

    def __post_init__(self) -> None:
        from shoprank.cascade.sorting import check_sort

        check_sort(self.sort)
        if self.surface not in SURFACES:
            raise ValueError(f"unknown surface {self.surface!r}; use one of {', '.join(SURFACES)}")
        if self.page < 1 or self.per_page < 1:
            raise ValueError(f"page and per_page must be at least 1, got {self.page} and {self.per_page}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.diversity is not None and not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"diversity must lie between 0 (off) and 1, got {self.diversity}")
        if self.surface in ("similar", "bought_together") and not self.item_id:
            raise ValueError(f"a {self.surface} request needs item_id")
        if self.surface == "recommend" and self.user_id is None and self.history is None:
            raise ValueError("a recommend request needs user_id or history")

    @property
    def offset(self) -> int:
        return 0 if self.limit is not None else (self.page - 1) * self.per_page

    @property
    def end(self) -> int:
        """One past the last place of the list this request answers."""
        return self.limit if self.limit is not None else self.page * self.per_page


@dataclass
class Page:
    """What the cascade answered: the page's items (score parts and reasons included), how many results the
    list holds in all, and which model version answered. ``facet_ids``: the head of the list facets count."""

    request: Request
    items: list[ScoredItem]
    total: int
    model_version: str | None
    query: str = ""
    query_truncated: bool = False
    facet_ids: Sequence[str] = field(default_factory=list)
    corrected_query: str | None = None  # the spelling index's correction of the query, when it made one
    did_you_mean: str | None = None  # nothing matched: a corrected query that matches products
    closest: list[ScoredItem] = field(default_factory=list)  # nothing matched and the shop asks: nearest products,
    # marked as not matching, never counted in ``total`` nor listed in ``items``
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]


@dataclass
class Candidates:
    """Stage-1 output for a batch of requests: catalogue indices ``ids`` (int64, [b, k], -1 where a row has fewer
    than k) and the scores that found them (float32, [b, k], -inf where ``ids`` is -1)."""

    ids: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.ids.shape != self.scores.shape or self.ids.ndim != 2:
            raise ValueError(f"ids {self.ids.shape} and scores {self.scores.shape} must be the same [b, k] shape")

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> Candidates:
        """Pack per-request (ids, scores) pairs, each best first, into [b, k] arrays."""
        ids = np.full((len(rows), k), -1, dtype=np.int64)
        scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        for n, (row_ids, row_scores) in enumerate(rows):
            m = min(k, len(row_ids))
            ids[n, :m] = row_ids[:m]
            scores[n, :m] = row_scores[:m]
        return cls(ids, scores)

    def row(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Request ``n``'s candidates without the padding."""
        keep = self.ids[n] >= 0
        return self.ids[n][keep], self.scores[n][keep]


@runtime_checkable
class CandidateSource(Protocol):
    """Stage 1: finds candidates (BM25, dense ANN, sequence-model ANN, co-visitation, item-to-item, text
    similarity, trending). ``retrieve`` never returns an item twice in a row, best first."""

    name: str

    def retrieve(self, requests: Sequence[Request], k: int) -> Candidates: ...


@runtime_checkable
class Ranker(Protocol):
    """Stage 2: a learning-to-rank model over feature rows, ``groups`` giving the rows per request in order."""

    def fit(self, features: np.ndarray, labels: np.ndarray, groups: Sequence[int],
            valid: tuple[np.ndarray, np.ndarray, Sequence[int]] | None = None) -> Ranker: ...

    def predict(self, features: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path) -> Ranker: ...


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores of a 1-d array, best first; equal scores in index order, so the
    top k is always the head of the top k + n (a list cut at 4 and one cut at 300 agree)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if k <= 0:
        return finite[:0]
    if len(finite) > k:
        kth = np.partition(scores[finite], len(finite) - k)[len(finite) - k]  # the k-th largest score
        finite = finite[scores[finite] >= kth]
    return finite[np.lexsort((finite, -scores[finite]))][:k]


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k` of each row of a 2-d array, as one ``[b, min(k, n)]`` array: the same order (best first,
    equal scores in index order); a row with fewer than ``k`` finite scores ends with its non-finite columns, in
    index order (callers that need "no item" there test the scores)."""
    b, n = scores.shape
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros((b, 0), dtype=np.int64)
    key = np.where(np.isfinite(scores), scores, -np.inf)
    part = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (b, n)).copy()
    values = np.take_along_axis(key, part, axis=1)
    best = np.take_along_axis(part, np.lexsort((part, -values), axis=-1), axis=1)
    # argpartition keeps any k of the scores equal to the k-th: where more of them exist, take the first by index
    kth = values.min(axis=1)
    for r in np.flatnonzero((key == kth[:, None]).sum(axis=1) > (values == kth[:, None]).sum(axis=1)):
        best[r] = np.lexsort((np.arange(n), -key[r]))[:k]
    return best.astype(np.int64, copy=False)
