"""Which store a process uses, and the one way to open it.

The embedded default keeps each shop in its own SQLite file (``<home>/<shop>/store.sqlite``). A PostgreSQL URL
(``--store postgresql://user@host:5432/db`` or ``$SHOPRANK_STORE``) puts every shop of the deployment in one
database that several processes share. Nothing outside this package knows which one it talks to: code opens a
shop's store through :func:`backend_for` (what :class:`shoprank.shops.Shop` does) or :func:`open_store`.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shoprank.store.base import Store

STORE_ENV = "SHOPRANK_STORE"
"""The environment variable naming the store: a PostgreSQL URL; unset or ``sqlite`` for the embedded one."""

SQLITE_FILE = "store.sqlite"
_SHOP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def is_postgres_url(url: str | Path | None) -> bool:
    return isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))


def store_url(explicit: str | None = None) -> str | None:
    """The store this process uses: ``explicit``, else ``$SHOPRANK_STORE``, else None (embedded SQLite)."""
    url = explicit if explicit is not None else os.environ.get(STORE_ENV) or None
    if url in (None, "", "sqlite"):
        return None
    if not is_postgres_url(url):
        raise ValueError(
            f"store {url!r} is not understood: give a PostgreSQL URL (postgresql://user:password@host:5432/db) "
            f"with --store or ${STORE_ENV}, or leave it unset for the embedded SQLite store"
        )
    return url


@contextmanager
def selected_store(url: str | None) -> Iterator[None]:
    """Within the block (and in the processes it starts) ``url`` is the store; None leaves the choice as it is."""
    if url is None:
        yield
        return
    store_url(url)  # refuse a bad URL before anything runs
    before = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STORE_ENV, None)
        else:
            os.environ[STORE_ENV] = before


class Backend(ABC):
    """Where the shops of one deployment keep their records."""

    @abstractmethod
    def open(self, shop: str, *, create: bool = True) -> Store:
        """The shop's store; ``create`` makes an empty shop when there is none."""

    @abstractmethod
    def exists(self, shop: str) -> bool: ...

    @abstractmethod
    def shop_names(self) -> list[str]:
        """Every shop, sorted by name."""

    @abstractmethod
    def drop(self, shop: str) -> None:
        """Remove the shop's records (its models folder is the caller's)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the records live, for messages (never a password)."""

    def key_records(self) -> Any | None:
        """A shared table of API keys, or None when keys live in the home folder's key file."""
        return None


class SQLiteBackend(Backend):
    """One SQLite file per shop, beside its models: ``<home>/<shop>/store.sqlite``."""

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)

    def path(self, shop: str) -> Path:
        return self.home / shop / SQLITE_FILE

    def open(self, shop: str, *, create: bool = True) -> Store:
        from shoprank.store.sqlite import SQLiteStore

        return SQLiteStore(self.path(shop))

    def exists(self, shop: str) -> bool:
        return self.path(shop).exists()

    def shop_names(self) -> list[str]:
        if not self.home.is_dir():
            return []
        return [p.name for p in sorted(self.home.iterdir())
                if p.is_dir() and _SHOP_NAME.match(p.name) and (p / SQLITE_FILE).exists()]

    def drop(self, shop: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            target = self.path(shop).with_name(SQLITE_FILE + suffix)
            if target.exists():
                target.unlink()

    def describe(self) -> str:
        return f"SQLite files under {self.home}"


def backend_for(home: str | Path, url: str | None = None) -> Backend:
    """The backend of a deployment: PostgreSQL when ``url`` (or ``$SHOPRANK_STORE``) names one, else SQLite."""
    url = store_url(url)
    if url is None:
        return SQLiteBackend(home)
    from shoprank.store.postgres import PostgresBackend

    return PostgresBackend(url)


def release_connections(url: str) -> None:
    """Close this process's connections to the shared store at ``url`` (before dropping a database; at exit)."""
    if is_postgres_url(url):
        from shoprank.store.postgres import close_database

        close_database(url)


def open_store(url_or_path: str | Path, shop: str | None = None) -> Store:
    """A store by URL or path: ``postgresql://...`` (with the shop's name) or the path of an SQLite file."""
    if is_postgres_url(url_or_path):
        if shop is None:
            raise ValueError("a PostgreSQL store holds many shops: name the shop to open")
        from shoprank.store.postgres import PostgresBackend

        return PostgresBackend(str(url_or_path)).open(shop)
    from shoprank.store.sqlite import SQLiteStore

    return SQLiteStore(Path(url_or_path))
