"""What every store does: the embedded SQLite store and the shared PostgreSQL one implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.data.records import Event, Judgment, Product, Review


class StoreError(OSError):
    """A store that cannot do what was asked; the message says why and how to fix it."""


class StoreFullError(StoreError):
    """The disk under the store is full. Nothing of the batch was stored; reads keep working."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The store cannot be reached (wrong address, server down, connection lost). A batch that met this was
    rolled back whole; retrying it is safe (events are idempotent by ``event_id``, upserts by id)."""


class StoreVersionError(StoreError):
    """The store's schema is newer than this version of shoprank knows."""


@dataclass(frozen=True)
class WriteResult:
    """What a batch write did. A batch is applied whole or not at all."""

    stored: int
    duplicates: int = 0
    updated: int = 0
    removed: int = 0  # records a replacing write dropped (the FAQ)
    flagged: int = 0  # reviews kept for a product the shop does not know (yet)


@dataclass(frozen=True)
class ReviewSentiment:
    """A sentiment model's verdict on one review: label index (0 negative, 1 neutral, 2 positive), score in
    [-1, 1] (P(positive) - P(negative)) and the review's topics."""

    review_id: str
    model_version: str
    label: int
    score: float
    topics: tuple[str, ...] = ()


class Store(ABC):
    """One shop's catalogue, behaviour log, impressions, judgments and settings.

    Writes return only once the batch is durable. Products are upserted by id, events are
    appended and idempotent by ``event_id``, impressions are appended and idempotent by ``request_id``,
    judgments are upserted by (query, product_id).
    """

    # writes ------------------------------------------------------------------------------
    @abstractmethod
    def upsert_products(self, products: Sequence[Product]) -> WriteResult: ...

    @abstractmethod
    def delete_products(self, ids: Sequence[str]) -> int: ...

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> WriteResult: ...

    # impressions (every store implements these; the defaults say which one does not yet) --------
    def append_impressions(self, impressions: Sequence[Impression]) -> WriteResult:
        """Store impressions whole or not at all; a ``request_id`` already stored (or repeated in the batch)
        is kept once, the first copy, and counted in ``duplicates``."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions yet")

    def get_impressions(self, request_ids: Sequence[str]) -> dict[str, Impression]:
        """The stored impressions of these request ids (ids not found are absent)."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions yet")

    def iter_impressions(self, since: float | None = None, until: float | None = None,
                         surfaces: Iterable[str] | None = None) -> Iterator[Impression]:
        """Impressions with ``since <= timestamp < until`` (either bound optional), of ``surfaces`` (default
        all), in time order (ties in arrival order)."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions yet")

    def delete_impressions_before(self, timestamp: float) -> int:
        """Remove impressions older than ``timestamp`` (retention); returns how many. Events are kept."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions yet")

    def impression_outcomes(self, since: float | None = None, until: float | None = None,
                            surfaces: Iterable[str] | None = None,
                            experiment: str | None = None) -> Iterator[Outcome]:
        """Impressions as :meth:`iter_impressions` gives them (only those of ``experiment`` when given), each
        with the clicks, carts and purchases attributed to it: what analytics and experiment reports read."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions yet")

    @abstractmethod
    def upsert_judgments(self, judgments: Sequence[Judgment]) -> WriteResult: ...

    @abstractmethod
    def set_setting(self, key: str, value: Any) -> None: ...

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about ``user_id`` in one transaction (a privacy request): their events
        (so personalisation, which reads them, forgets them too) and any other per-user records. Returns the
        number of records removed per kind, e.g. ``{"events": 12}``."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete a user's data")

    # reviews, their sentiment, and alerts (shoprank.sentiment) ------------------------------
    # Not abstract so that a store without reviews still opens; each raises until implemented.
    def upsert_reviews(self, reviews: Sequence[Review]) -> WriteResult:
        """Upsert by ``review_id`` (the last copy in a batch wins), whole batch or nothing. ``flagged`` counts
        the reviews whose product the shop does not hold: they are stored all the same."""
        raise NotImplementedError(f"{type(self).__name__} does not store reviews")

    def iter_reviews(self, product_id: str | None = None, since: float | None = None) -> Iterator[Review]:
        """Reviews in time order (ties by review_id), of one product and from ``since`` on when given."""
        raise NotImplementedError(f"{type(self).__name__} does not store reviews")

    def unknown_product_reviews(self) -> list[str]:
        """Ids of stored reviews whose product is not in the catalogue now."""
        raise NotImplementedError(f"{type(self).__name__} does not store reviews")

    def put_review_sentiment(self, rows: Sequence[ReviewSentiment]) -> None:
        """Store (replace) the model's verdict on reviews."""
        raise NotImplementedError(f"{type(self).__name__} does not store review sentiment")

    def review_sentiment(self, model_version: str) -> dict[str, ReviewSentiment]:
        """review_id -> verdict, for the verdicts of ``model_version``."""
        raise NotImplementedError(f"{type(self).__name__} does not store review sentiment")

    def add_alerts(self, alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert alerts (unique by ``scope`` and ``at``); returns the ones that were new."""
        raise NotImplementedError(f"{type(self).__name__} does not store alerts")

    def list_alerts(self, limit: int = 100, scope: str | None = None) -> list[dict[str, Any]]:
        """Alerts, newest ``at`` first."""
        raise NotImplementedError(f"{type(self).__name__} does not store alerts")

    def mark_alert(self, scope: str, at: float, delivered: bool, attempts: int, error: str | None = None) -> None:
        """Record a webhook delivery attempt's outcome."""
        raise NotImplementedError(f"{type(self).__name__} does not store alerts")

    # reads -------------------------------------------------------------------------------
    @abstractmethod
    def get_setting(self, key: str, default: Any = None) -> Any: ...

    @abstractmethod
    def get_products(self, ids: Sequence[str]) -> list[Product | None]: ...

    def get_product(self, product_id: str) -> Product | None:
        return self.get_products([product_id])[0]

    @abstractmethod
    def iter_products(self) -> Iterator[Product]: ...

    @abstractmethod
    def catalog_version(self) -> int:
        """A counter that every product write or delete raises; 0 for an empty catalogue."""

    @abstractmethod
    def products_changed_since(self, version: int) -> tuple[list[Product], list[str], int]:
        """Products upserted and ids deleted after ``version``, and the current version."""

    @abstractmethod
    def iter_events(self, types: Iterable[str] | None = None) -> Iterator[Event]:
        """All events in time order (ties in arrival order). An event's ``request_id`` is set only when it was
        attributed to one of this shop's impressions when it was stored."""

    @abstractmethod
    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """A user's most recent events, oldest first."""

    @abstractmethod
    def recent_users(self, limit: int = 100, scan: int = 5000) -> list[str]:
        """Users of the latest ``scan`` events, most recent first, at most ``limit``."""

    @abstractmethod
    def judgments(self) -> list[Judgment]: ...

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Numbers of products, events, users, judgments, judged queries and impressions."""

    def product_count(self) -> int:
        """Products stored now (cheap; stores override the default)."""
        return self.counts()["products"]

    def event_count(self) -> int:
        """Events stored now (cheap; stores override the default)."""
        return self.counts()["events"]

    # customer-service answers: the FAQ and past support conversations ---------------------------
    # Not abstract so that a store without them still opens; every store should implement all four.
    def put_faq(self, entries: Sequence[FaqEntry], *, replace: bool = True) -> WriteResult:
        """Store FAQ entries by id (ids unique in the batch); ``replace`` also removes the entries not in the
        batch, so the batch becomes the FAQ (``WriteResult.removed`` counts the entries dropped)."""
        raise NotImplementedError(f"{type(self).__name__} does not store an FAQ yet")

    def faq_entries(self, ids: Sequence[str] | None = None) -> list[FaqEntry]:
        """The FAQ in the order it was given (or the entries of ``ids`` that exist, in that order)."""
        raise NotImplementedError(f"{type(self).__name__} does not store an FAQ yet")

    def append_conversations(self, conversations: Sequence[Conversation]) -> WriteResult:
        """Past (question, entry) pairs; the same pair twice is stored once (counted as a duplicate)."""
        raise NotImplementedError(f"{type(self).__name__} does not store conversations yet")

    def conversations(self) -> list[Conversation]:
        """Every stored conversation in arrival order (``faq_id`` None: no entry answered it)."""
        raise NotImplementedError(f"{type(self).__name__} does not store conversations yet")

    def backup(self, path: str | Path) -> None:
        """Write a consistent copy of this store as the embedded store file ``path`` (benches that serve a copy
        of a shop, never writing into the original)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be copied to a file; copy the database with its "
                                  "own tools (pg_dump)")

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the storage engine's own check; empty when healthy."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
