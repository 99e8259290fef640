from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprank.evaluation.trec import read_qrels, read_run, write_qrels, write_run


def test_run_file_format(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    write_run(path, {"q1": [("d1", 0.5), ("d2", 2.0), ("d3", 0.5)], "q2": [("d9", -1.25)]}, tag="bm25")
    assert path.read_text().splitlines() == [
        "q1 Q0 d2 1 2.0 bm25",
        "q1 Q0 d1 2 0.5 bm25",  # equal scores keep their input order
        "q1 Q0 d3 3 0.5 bm25",
        "q2 Q0 d9 1 -1.25 bm25",
    ]


def test_run_roundtrip_orders_by_rank(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    run = {"q1": [("a", 0.1), ("b", 0.3), ("c", 0.2)], "7": [("x", 1 / 3)]}
    write_run(path, run)
    assert read_run(path) == {"q1": [("b", 0.3), ("c", 0.2), ("a", 0.1)], "7": [("x", 1 / 3)]}


def test_read_run_uses_rank_column(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("q Q0 late 2 9.0 t\n\nq Q0 early 1 1.0 t\n")
    assert read_run(path) == {"q": [("early", 1.0), ("late", 9.0)]}


@pytest.mark.parametrize(
    "run",
    [{"q 1": [("d", 1.0)]}, {"q": [("d\t2", 1.0)]}, {"q": [("", 1.0)]}],
)
def test_write_run_rejects_whitespace_ids(tmp_path: Path, run: dict[str, list[tuple[str, float]]]) -> None:
    with pytest.raises(ValueError, match="line 1: .*whitespace"):
        write_run(tmp_path / "run.txt", run)


def test_write_run_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 2: docid 'd' appears twice"):
        write_run(tmp_path / "run.txt", {"q": [("d", 1.0), ("d", 0.5)]})
    with pytest.raises(ValueError, match="finite"):
        write_run(tmp_path / "run.txt", {"q": [("d", float("nan"))]})
    with pytest.raises(ValueError, match="tag"):
        write_run(tmp_path / "run.txt", {"q": [("d", 1.0)]}, tag="my run")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q Q0 d 1 1.0\n", "line 1: expected"),
        ("q Q0 a 1 1.0 t\nq Q0 d one 1.0 t\n", "line 2: bad rank"),
        ("q Q0 d 1 1.0 t\nq Q0 d 2 0.5 t\n", "line 2: docid 'd' appears twice"),
        ("q Q0 d 1 nan t\n", "line 1: score must be finite"),
    ],
)
def test_read_run_rejects_malformed_lines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_run(path)


def test_qrels_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    qrels = {"q1": {"a": 2.0, "b": 0.0}, "q2": {"c": 2.33}}
    write_qrels(path, qrels)
    assert path.read_text().splitlines() == ["q1 0 a 2", "q1 0 b 0", "q2 0 c 2.33"]
    assert read_qrels(path) == qrels


def test_qrels_rejects_bad_lines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 2: docid 'a b'"):
        write_qrels(tmp_path / "q.txt", {"q": {"ok": 1, "a b": 1}})
    path = tmp_path / "bad.txt"
    path.write_text("q 0 a 1\nq 0 a 2\n")
    with pytest.raises(ValueError, match="line 2: docid 'a' judged twice"):
        read_qrels(path)
    path.write_text("q 0 a\n")
    with pytest.raises(ValueError, match="line 1: expected"):
        read_qrels(path)


tokens = st.text(st.characters(codec="utf-8", exclude_categories=("Z", "C")), min_size=1, max_size=8)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.dictionaries(
        tokens,
        st.dictionaries(tokens, st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
        max_size=5,
    )
)
def test_run_roundtrip_property(tmp_path: Path, scored: dict[str, dict[str, float]]) -> None:
    path = tmp_path / "run.txt"
    run = {qid: list(docs.items()) for qid, docs in scored.items()}
    write_run(path, run)
    back = read_run(path)
    assert back == {qid: sorted(docs, key=lambda pair: -pair[1]) for qid, docs in run.items()}
