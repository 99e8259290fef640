from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoprank.data.records import Judgment
from shoprank.data.splits import (
    assign_query,
    kfold_by_query,
    leave_one_out,
    normalise_query,
    query_fold,
    split_by_fold,
    split_by_query,
    temporal_split,
)

# --- leave one out -----------------------------------------------------------


def test_leave_one_out_known_answer() -> None:
    split = leave_one_out({"u1": ["a", "b", "c", "d"], "u2": ["x", "y"], "u3": ["p", "q", "r"]})
    assert split.train == {"u1": ["a", "b"], "u2": ["x", "y"], "u3": ["p"]}
    assert split.valid == {"u1": "c", "u3": "q"}
    assert split.test == {"u1": "d", "u3": "r"}
    assert split.valid_history == {"u1": ["a", "b"], "u3": ["p"]}
    assert split.test_history == {"u1": ["a", "b", "c"], "u3": ["p", "q"]}
    assert split.evaluated_users == ["u1", "u3"]
    assert split.train_for_test() == {"u1": ["a", "b", "c"], "u2": ["x", "y"], "u3": ["p", "q"]}


sequences = st.dictionaries(st.integers(0, 50), st.lists(st.integers(0, 20), max_size=8), max_size=10)


@given(sequences)
def test_leave_one_out_invariants(seqs: dict[int, list[int]]) -> None:
    split = leave_one_out(seqs)
    assert set(split.train) == set(seqs)
    for user, seq in seqs.items():
        if len(seq) < 3:
            assert split.train[user] == seq
            assert user not in split.valid and user not in split.test
            continue
        # train + valid + test is the whole sequence, in order: the targets come after every train item
        assert split.train[user] + [split.valid[user], split.test[user]] == seq
        assert split.valid_history[user] == seq[:-2]
        assert split.test_history[user] == seq[:-1]
        assert len(split.train[user]) == len(seq) - 2


# --- query splits ------------------------------------------------------------


def _judgments(queries: list[str]) -> list[tuple[str, str, float]]:
    return [(q, f"p{i}", float(i % 4)) for i, q in enumerate(queries)]


queries = st.lists(st.text(st.sampled_from("abc XY"), max_size=5), max_size=40)


@given(queries, st.floats(0, 0.6), st.floats(0, 0.39), st.integers(0, 5))
def test_split_by_query_partitions_by_query(qs: list[str], test_share: float, valid_share: float, seed: int) -> None:
    records = _judgments(qs)
    split = split_by_query(records, test_share, valid_share, seed)
    parts = [split.train, split.valid, split.test]
    assert Counter(r for part in parts for r in part) == Counter(records)
    seen = [{normalise_query(r[0]) for r in part} for part in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


@given(queries, queries, st.integers(0, 5))
def test_adding_queries_keeps_assignments(old: list[str], new: list[str], seed: int) -> None:
    before = split_by_query(_judgments(old), 0.3, 0.2, seed)
    after = split_by_query(_judgments(old) + _judgments(new), 0.3, 0.2, seed)
    for name in ("train", "valid", "test"):
        assert {r[0] for r in getattr(before, name)} <= {r[0] for r in getattr(after, name)}


def test_split_by_query_normalises_and_accepts_objects() -> None:
    records = [Judgment("Red  Shoes ", "p1", 2.0), Judgment("red shoes", "p2", 1.0), Judgment("tent", "p3", 0.0)]
    for seed in range(10):
        split = split_by_query(records, test_share=0.5, seed=seed)
        part_of = {r.product_id: name for name in ("train", "test") for r in getattr(split, name)}
        assert part_of["p1"] == part_of["p2"]  # the same query after normalisation
        assert len(part_of) == 3
    assert assign_query("Red  Shoes ", 0.5, seed=3) == assign_query("red shoes", 0.5, seed=3)
    assert normalise_query("  Red\tSHOES  x ") == "red shoes x"


def test_split_by_query_shares_are_roughly_kept() -> None:
    split = split_by_query(_judgments([f"query {i}" for i in range(4000)]), test_share=0.2, valid_share=0.1, seed=1)
    assert len(split.test) == pytest.approx(800, abs=120)
    assert len(split.valid) == pytest.approx(400, abs=90)


def test_split_by_query_is_deterministic_and_seeded() -> None:
    records = _judgments([f"q{i}" for i in range(200)])
    assert split_by_query(records, seed=7) == split_by_query(records, seed=7)
    assert split_by_query(records, seed=7).test != split_by_query(records, seed=8).test


def test_bad_shares_rejected() -> None:
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_by_query([], test_share=0.6, valid_share=0.5)


@given(queries, st.integers(2, 6), st.integers(0, 3))
def test_kfold_tests_each_query_once(qs: list[str], folds: int, seed: int) -> None:
    records = _judgments(qs)
    splits = kfold_by_query(records, folds, seed)
    assert len(splits) == folds
    assert Counter(r for s in splits for r in s.test) == Counter(records)
    for s in splits:
        assert Counter(s.train + s.test) == Counter(records)
        assert {normalise_query(r[0]) for r in s.train}.isdisjoint({normalise_query(r[0]) for r in s.test})
    for q in qs:
        assert 0 <= query_fold(q, folds, seed) < folds


@dataclass(frozen=True)
class FoldedJudgment:
    query: str
    product_id: str
    grade: float
    fold: int


def test_split_by_provided_fold_column() -> None:
    records = [FoldedJudgment("a", "p1", 1, 0), FoldedJudgment("a", "p2", 0, 0), FoldedJudgment("b", "p3", 2, 1)]
    splits = split_by_fold(records, "fold")
    assert [s.test for s in splits] == [records[:2], records[2:]]
    assert [s.train for s in splits] == [records[2:], records[:2]]
    dicts = [{"query": "a", "fold": 1}, {"query": "b", "fold": 0}]
    assert [s.test for s in split_by_fold(dicts, "fold")] == [[dicts[1]], [dicts[0]]]
    with pytest.raises(ValueError, match="query 'a' is in folds 0 and 1"):
        split_by_fold(records + [FoldedJudgment("A ", "p4", 1, 1)], "fold")


# --- temporal split ----------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    item: str
    timestamp: float


def test_temporal_split_known_answer() -> None:
    events = [Ev(str(t), float(t)) for t in [5, 1, 3, 2, 4]]
    split = temporal_split(events, test_share=0.4)
    assert [e.timestamp for e in split.train] == [1, 2, 3]
    assert [e.timestamp for e in split.test] == [4, 5]
    assert split.cutoff == 4.0
    by_cutoff = temporal_split(events, cutoff=2.5)
    assert [e.timestamp for e in by_cutoff.test] == [3, 4, 5]


@given(st.lists(st.integers(0, 10), max_size=30), st.floats(0.01, 0.99))
def test_temporal_split_nothing_from_the_future(times: list[int], share: float) -> None:
    events = [{"id": i, "timestamp": float(t)} for i, t in enumerate(times)]
    split = temporal_split(events, share)
    assert sorted(e["id"] for e in split.train + split.test) == list(range(len(events)))
    if split.train and split.test:
        assert max(e["timestamp"] for e in split.train) < min(e["timestamp"] for e in split.test)
    if events:
        assert split.test  # at least one event is held out
