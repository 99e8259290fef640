"""Query embeddings by normalised query text, least recently used dropped first."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class QueryCache:
    """LRU of query embeddings keyed by the normalised query: runs of spaces folded, and case too when the
    tokenizer lower-cases anyway (``fold_case``), so "Cordless  Drill" and "cordless drill" share an entry.
    Thread-safe. One cache belongs to one engine, so a new bundle starts with an empty one."""

    def __init__(self, size: int = 4096, fold_case: bool = False) -> None:
        if size < 0:
            raise ValueError("the query cache size must be 0 (off) or more")
        self.size = size
        self.fold_case = fold_case
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def key(self, query: str) -> str:
        return " ".join((query.lower() if self.fold_case else query).split())

    def get(self, query: str) -> np.ndarray | None:
        key = self.key(query)
        with self._lock:
            vector = self._items.get(key)
            if vector is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return vector

    def put(self, query: str, vector: np.ndarray) -> None:
        if self.size == 0:
            return
        vector = np.array(vector, np.float32)
        vector.setflags(write=False)  # shared by every search of this query
        key = self.key(query)
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
