"""Train / validation / test splits on plain Python data (no store needed).

* :func:`leave_one_out` -- recommendation: per user, the last item is the test
  target and the one before it the validation target.
* :func:`split_by_query`, :func:`kfold_by_query`, :func:`split_by_fold` -- search:
  every distinct (normalised) query lands in exactly one part, so no query is
  both trained on and evaluated. Assignment hashes the query with the seed, so
  adding queries never moves the others.
* :func:`temporal_split` -- one global cut in time: everything in train happened
  strictly before everything in test.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

User = TypeVar("User", bound=Hashable)
Item = TypeVar("Item")
Record = TypeVar("Record")
Part = Literal["train", "valid", "test"]

# ---------------------------------------------------------------------------
# Leave one out
# ---------------------------------------------------------------------------

MIN_LOO_LENGTH = 3


@dataclass(frozen=True)
class LooSplit(Generic[User, Item]):
    """Per-user leave-one-out split of time-ordered sequences.

    For a user with ``seq`` of at least 3 items: ``train[u] = seq[:-2]``,
    ``valid[u] = seq[-2]``, ``test[u] = seq[-1]``, ``valid_history[u] = seq[:-2]``
    (what the model sees when predicting the validation target) and
    ``test_history[u] = seq[:-1]`` (when predicting the test target). A user with
    fewer than 3 items keeps the whole sequence in ``train`` and appears in no
    other field: they help training but are never evaluated.
    """

    train: dict[User, list[Item]] = field(default_factory=dict)
    valid: dict[User, Item] = field(default_factory=dict)
    test: dict[User, Item] = field(default_factory=dict)
    valid_history: dict[User, list[Item]] = field(default_factory=dict)
    test_history: dict[User, list[Item]] = field(default_factory=dict)

    @property
    def evaluated_users(self) -> list[User]:
        """Users with a validation and a test target, in input order."""
        return list(self.test)

    def train_for_test(self) -> dict[User, list[Item]]:
        """Training sequences for the final refit before testing: ``seq[:-1]`` for evaluated
        users (train plus the validation target), the whole sequence for the others."""
        return {user: list(self.test_history.get(user, items)) for user, items in self.train.items()}


def leave_one_out(sequences: Mapping[User, Sequence[Item]]) -> LooSplit[User, Item]:
    """Split each user's time-ordered item sequence (oldest first) leave-one-out; see :class:`LooSplit`."""
    split: LooSplit[User, Item] = LooSplit()
    for user, seq in sequences.items():
        items = list(seq)
        if len(items) < MIN_LOO_LENGTH:
            split.train[user] = items
            continue
        split.train[user] = items[:-2]
        split.valid[user] = items[-2]
        split.test[user] = items[-1]
        split.valid_history[user] = items[:-2]
        split.test_history[user] = items[:-1]
    return split


# ---------------------------------------------------------------------------
# Query-grouped splits
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuerySplit(Generic[Record]):
    """Original records divided so that each normalised query is in exactly one part."""

    train: list[Record] = field(default_factory=list)
    valid: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)


def normalise_query(query: str) -> str:
    """NFC, lower-cased, stripped, inner whitespace collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFC", query).lower().split())


def query_of(record: Any) -> str:
    """The query of a record: a ``.query`` attribute, a ``"query"`` key, or the first element."""
    if isinstance(record, Mapping):
        return str(record["query"])
    if hasattr(record, "query"):
        return str(record.query)
    return str(record[0])


def query_hash(query: str, seed: int = 0) -> float:
    """A stable number in [0, 1) for the normalised query and seed (blake2b; same on every run and machine)."""
    digest = hashlib.blake2b(f"{seed}\x00{normalise_query(query)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_query(query: str, test_share: float = 0.2, valid_share: float = 0.0, seed: int = 0) -> Part:
    """The part a query belongs to: hash < test_share -> test, < test_share + valid_share -> valid, else train."""
    _check_shares(test_share, valid_share)
    u = query_hash(query, seed)
    if u < test_share:
        return "test"
    if u < test_share + valid_share:
        return "valid"
    return "train"


def _check_shares(test_share: float, valid_share: float) -> None:
    if not (0.0 <= test_share < 1.0 and 0.0 <= valid_share < 1.0 and test_share + valid_share < 1.0):
        raise ValueError(
            f"test_share ({test_share}) and valid_share ({valid_share}) must be in [0, 1) and sum to less than 1"
        )


def split_by_query(
    judgments: Sequence[Record],
    test_share: float = 0.2,
    valid_share: float = 0.0,
    seed: int = 0,
) -> QuerySplit[Record]:
    """Split judgments (``(query, product_id, grade)`` tuples or objects with ``.query``) by query.

    Each distinct normalised query goes wholly to train, valid or test by
    :func:`assign_query`. The shares hold in expectation over queries, not exactly:
    a handful of queries may leave a part empty. Record order is kept within each part.
    """
    _check_shares(test_share, valid_share)
    parts: dict[str, Part] = {}
    split: QuerySplit[Record] = QuerySplit()
    for record in judgments:
        query = normalise_query(query_of(record))
        if query not in parts:
            parts[query] = assign_query(query, test_share, valid_share, seed)
        getattr(split, parts[query]).append(record)
    return split


def query_fold(query: str, folds: int, seed: int = 0) -> int:
    """The fold in ``range(folds)`` of a query, stable like :func:`assign_query`."""
    return min(int(query_hash(query, seed) * folds), folds - 1)


def kfold_by_query(judgments: Sequence[Record], folds: int = 10, seed: int = 0) -> list[QuerySplit[Record]]:
    """``folds`` splits; in split ``f`` the queries of fold ``f`` are the test part, the rest train
    (``valid`` stays empty). Every query is tested exactly once. Fold sizes are equal in expectation."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    return split_by_fold(judgments, lambda record: query_fold(query_of(record), folds, seed), list(range(folds)))


def split_by_fold(
    judgments: Sequence[Record],
    fold: str | Callable[[Record], Hashable],
    fold_values: Sequence[Hashable] | None = None,
) -> list[QuerySplit[Record]]:
    """Cross-validation splits from a provided fold column.

    ``fold`` is an attribute / key name or a function giving a record's fold. One
    split per fold value (``fold_values`` order, else sorted by ``str``): that fold is
    the test part, all others train. Raises ValueError if one normalised query
    appears in two folds, which would leak it between train and test.
    """
    fold_of: Callable[[Record], Hashable]
    if callable(fold):
        fold_of = fold
    else:
        name = fold

        def fold_of(record: Record) -> Hashable:
            return record[name] if isinstance(record, Mapping) else getattr(record, name)

    labels = [fold_of(record) for record in judgments]
    first: dict[str, Hashable] = {}
    for record, label in zip(judgments, labels, strict=True):
        query = normalise_query(query_of(record))
        if first.setdefault(query, label) != label:
            raise ValueError(f"query {query!r} is in folds {first[query]!r} and {label!r}; a query must be in one fold")
    values = list(fold_values) if fold_values is not None else sorted(set(labels), key=str)
    return [
        QuerySplit(
            train=[r for r, label in zip(judgments, labels, strict=True) if label != value],
            test=[r for r, label in zip(judgments, labels, strict=True) if label == value],
        )
        for value in values
    ]


# ---------------------------------------------------------------------------
# Temporal split
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalSplit(Generic[Record]):
    """Events before ``cutoff`` (train) and at or after it (test)."""

    train: list[Record]
    test: list[Record]
    cutoff: float


def _timestamp(record: Any) -> float:
    if isinstance(record, Mapping):
        return float(record["timestamp"])
    return float(record.timestamp)


def temporal_split(
    events: Sequence[Record],
    test_share: float = 0.2,
    *,
    cutoff: float | None = None,
    time_of: Callable[[Record], float] = _timestamp,
) -> TemporalSplit[Record]:
    """One global cut in time: train = events with time < cutoff, test = time >= cutoff.

    ``cutoff`` defaults to the time of the event that starts the last ``test_share``
    of events (rounded up to at least one event). Events sharing the cutoff time all
    go to test, so train holds nothing from test's moment or later; with many ties
    the test share can exceed ``test_share``. Events need not be sorted; each part
    is returned in time order (stable for equal times). ``time_of`` reads a record's
    time (default: ``.timestamp`` or the ``"timestamp"`` key).
    """
    ordered = sorted(events, key=time_of)
    if cutoff is None:
        if not 0.0 < test_share < 1.0:
            raise ValueError(f"test_share must be in (0, 1), got {test_share}")
        if not ordered:
            return TemporalSplit([], [], math.inf)
        n_test = max(1, math.ceil(len(ordered) * test_share))
        cutoff = time_of(ordered[len(ordered) - n_test])
    train = [e for e in ordered if time_of(e) < cutoff]
    return TemporalSplit(train=train, test=ordered[len(train) :], cutoff=float(cutoff))
