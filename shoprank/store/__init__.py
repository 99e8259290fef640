"""Storage of a shop's records behind one small interface."""

from shoprank.store.base import Store, StoreFullError, WriteResult
from shoprank.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "StoreFullError", "WriteResult"]
