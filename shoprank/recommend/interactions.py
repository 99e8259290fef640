"""A shop's behaviour log as index arrays: one item sequence (and event-type sequence) per user.

Item indices start at 1; 0 is padding. Event types are ``EVENT_TYPES`` positions + 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shoprank.data.limits import EVENT_TYPES, EVENT_WEIGHTS
from shoprank.data.records import Event, Product

TYPE_INDEX = {name: i + 1 for i, name in enumerate(EVENT_TYPES)}
TYPE_WEIGHTS = np.array([0.0] + [EVENT_WEIGHTS[t] for t in EVENT_TYPES], dtype=np.float32)


@dataclass
class Catalogue:
    """Item id <-> index (1-based) and each item's text."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, item_id: str, text: str = "") -> int:
        if item_id not in self.index:
            self.ids.append(item_id)
            self.texts.append(text)
            self.index[item_id] = len(self.ids)
        return self.index[item_id]

    def id_of(self, idx: int) -> str:
        return self.ids[idx - 1]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> Catalogue:
        cat = cls()
        for p in products:
            cat.add(p.id, p.text())
        return cat


@dataclass
class Sequences:
    """Per-user item and type index arrays, oldest first."""

    users: list[str]
    items: list[np.ndarray]
    types: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.users)

    def head(self, drop_last: int) -> Sequences:
        """Every sequence without its last ``drop_last`` events."""
        if drop_last == 0:
            return self
        return Sequences(self.users, [s[:-drop_last] for s in self.items], [t[:-drop_last] for t in self.types])

    def matrix(self, n_items: int, weighted: bool = False) -> sp.csr_matrix:
        """users x (n_items + 1) matrix: 1 per (user, item) seen, or the sum of event weights."""
        rows = np.repeat(np.arange(len(self.items)), [len(s) for s in self.items])
        cols = np.concatenate(self.items) if self.items else np.zeros(0, dtype=np.int64)
        types = np.concatenate(self.types) if self.types else np.zeros(0, dtype=np.int64)
        values = TYPE_WEIGHTS[types] if weighted else np.ones(len(cols), dtype=np.float32)
        m = sp.csr_matrix((values, (rows, cols)), shape=(len(self.items), n_items + 1), dtype=np.float32)
        if not weighted:
            m.data[:] = 1.0
        return m


def events_to_sequences(events: Iterable[Event], catalogue: Catalogue, min_events: int = 1) -> Sequences:
    """Group time-ordered events by user; items the catalogue lacks are added to it (without text)."""
    items: dict[str, list[int]] = {}
    types: dict[str, list[int]] = {}
    for e in events:
        items.setdefault(e.user_id, []).append(catalogue.add(e.item_id))
        types.setdefault(e.user_id, []).append(TYPE_INDEX.get(e.type, TYPE_INDEX["view"]))
    users = [u for u, s in items.items() if len(s) >= min_events]
    return Sequences(
        users,
        [np.asarray(items[u], dtype=np.int64) for u in users],
        [np.asarray(types[u], dtype=np.int64) for u in users],
    )


def history_arrays(history: Sequence[Event], catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """A user's events -> (items, types) index arrays; items unknown to the catalogue are skipped."""
    pairs = [(catalogue.index[e.item_id], TYPE_INDEX.get(e.type, 1)) for e in history if e.item_id in catalogue.index]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    arr = np.asarray(pairs, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


def pad_left(seqs: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """The last ``max_len`` entries of each sequence, left-padded with 0 to the longest: (B, L)."""
    length = max(1, min(max_len, max((len(s) for s in seqs), default=1)))
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, s in enumerate(seqs):
        tail = s[-length:]
        if len(tail):
            out[row, length - len(tail):] = tail
    return out
