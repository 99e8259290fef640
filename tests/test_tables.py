"""One table formatter: known output, and no second implementation in the package or the benches."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprank.evaluation.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_markdown_table_pads_columns_and_formats_floats() -> None:
    assert markdown_table(["model", "ndcg@10", "users"], [["popular", 0.00591, 12], ["kNN", 0.0519, None]]) == (
        "| model   | ndcg@10 | users |\n"
        "|---------|---------|-------|\n"
        "| popular | 0.0059  | 12    |\n"
        "| kNN     | 0.0519  |       |")
    assert markdown_table(["a"], [[1.23456]], digits=2).splitlines()[-1] == "| 1.23 |"
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        markdown_table(["a", "b"], [[1]])


def test_every_table_is_made_by_the_one_formatter() -> None:
    from bench.common import table
    from shoprank.recommend.evaluate import format_table as recommend_table

    rows = [{"model": "kNN", "ndcg@10": 0.0519, "seconds": 1.5}]
    assert recommend_table(rows) == markdown_table(["model", "ndcg@10", "seconds"], [["kNN", 0.0519, "1.5"]])
    assert table(["x"], [[0.5]]) == markdown_table(["x"], [[0.5]])
    padders = [str(p.relative_to(ROOT)) for folder in ("shoprank", "bench") for p in sorted((ROOT / folder).rglob(
        "*.py")) if ".ljust(" in p.read_text() and p.name != "tables.py"]
    assert not padders, f"tables laid out outside shoprank/evaluation/tables.py: {padders}"
