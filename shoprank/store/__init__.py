"""Storage of a shop's records behind one small interface."""

from shoprank.store.base import Store, WriteResult
from shoprank.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "WriteResult"]
