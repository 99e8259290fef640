"""What every store does: the embedded SQLite store and the shared PostgreSQL one implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
    """One shop's catalogue, behaviour log, judgments and settings.

    Writes return only once the batch is durable. Products are upserted by id, events are
    appended and idempotent by ``event_id``, judgments are upserted by (query, product_id).
    """

    # writes ------------------------------------------------------------------------------
    @abstractmethod
    def upsert_products(self, products: Sequence[Product]) -> WriteResult: ...

    @abstractmethod
    def delete_products(self, ids: Sequence[str]) -> int: ...

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> WriteResult: ...

    @abstractmethod
    def upsert_judgments(self, judgments: Sequence[Judgment]) -> WriteResult: ...

    @abstractmethod
    def set_setting(self, key: str, value: Any) -> None: ...

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
        """All events in time order (ties in arrival order)."""

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
        """Numbers of products, events, users and judgments."""

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the storage engine's own check; empty when healthy."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
