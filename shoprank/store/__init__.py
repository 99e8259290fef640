"""Storage of a shop's records behind one small interface.

Code outside this package opens stores through :class:`shoprank.shops.Shop` or :func:`open_store` and talks to
them as :class:`Store`; which implementation answers (embedded SQLite, shared PostgreSQL) is configuration.
"""

from shoprank.store.base import Store, StoreError, StoreFullError, StoreUnavailableError, StoreVersionError, WriteResult
from shoprank.store.factory import (
    STORE_ENV,
    Backend,
    backend_for,
    open_store,
    release_connections,
    selected_store,
    store_url,
)
from shoprank.store.sqlite import SQLiteStore  # for tests and tools that pick the embedded store on purpose

__all__ = [
    "STORE_ENV",
    "Backend",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreUnavailableError",
    "StoreVersionError",
    "WriteResult",
    "backend_for",
    "open_store",
    "release_connections",
    "selected_store",
    "store_url",
]
