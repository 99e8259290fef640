"""What every store does. The embedded SQLite store implements it; a PostgreSQL one can follow."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.data.records import Event, Judgment, Product


class StoreFullError(OSError):
    """The disk under the store is full. Nothing of the batch was stored; reads keep working."""


@dataclass(frozen=True)
class WriteResult:
    """What a batch write did. A batch is applied whole or not at all."""

    stored: int
    duplicates: int = 0
    updated: int = 0
    removed: int = 0  # records a replacing write dropped (the FAQ)


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
    def products_changed_since(self, version: int) -> tuple[list[Product], list[str], int]:
        """Products upserted and ids deleted after ``version``, and the current version."""

    @abstractmethod
    def iter_events(self, types: Iterable[str] | None = None) -> Iterator[Event]:
        """All events in time order (ties in arrival order)."""

    @abstractmethod
    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """A user's most recent events, oldest first."""

    @abstractmethod
    def judgments(self) -> list[Judgment]: ...

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Numbers of products, events, users and judgments."""

    # customer-service answers: the FAQ and past support conversations ---------------------------
    @abstractmethod
    def put_faq(self, entries: Sequence[FaqEntry], *, replace: bool = True) -> WriteResult:
        """Store FAQ entries by id (ids unique in the batch); ``replace`` also removes the entries not in the
        batch, so the batch becomes the FAQ (``WriteResult.removed`` counts the entries dropped)."""

    @abstractmethod
    def faq_entries(self, ids: Sequence[str] | None = None) -> list[FaqEntry]:
        """The FAQ in the order it was given (or the entries of ``ids`` that exist, in that order)."""

    @abstractmethod
    def append_conversations(self, conversations: Sequence[Conversation]) -> WriteResult:
        """Past (question, entry) pairs; the same pair twice is stored once (counted as a duplicate)."""

    @abstractmethod
    def conversations(self) -> list[Conversation]: ...

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the storage engine's own check; empty when healthy."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
