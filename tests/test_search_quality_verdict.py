"""The search-quality bench's verdict reads the configuration the shop ships, never the best column."""

from __future__ import annotations

from bench.search_quality import render
from shoprank.search.evaluate import LABELS, METHODS


def _entry(protocol: str, means: dict[str, dict[str, float]]) -> dict:
    return {"set": "homedepot", "protocol": protocol, "queries": {"bm25": 5}, "means": means,
            "when": "2026-12-01T00:00:00"}


def test_a_target_met_only_by_a_baseline_is_not_met() -> None:
    full = _entry("full catalogue", {"bm25": {"ndcg@10": 0.50, "recall@100": 0.90},
                                     "served": {"ndcg@10": 0.40, "recall@100": 0.86}})
    lines = render([full], LABELS, METHODS).splitlines()
    ndcg = next(line for line in lines if "ndcg@10" in line)
    recall = next(line for line in lines if "recall@100" in line)
    assert "not met (served (cascade))" in ndcg  # BM25's 0.50 passes 0.45, the served 0.40 does not
    assert "met (served (cascade))" in recall and "not met" not in recall


def test_judged_lists_read_the_fused_ranker() -> None:
    judged = _entry("judged re-ranking", {"bm25": {"ndcg@10": 0.95}, "fused": {"ndcg@10": 0.93}})
    line = next(line for line in render([judged], LABELS, METHODS).splitlines() if "ndcg@10" in line)
    assert "not met (fused ranker)" in line
