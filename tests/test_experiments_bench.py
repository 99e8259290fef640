"""The experiments bench on a small setting: both methods decide, for the better ranker, and interleaving
needs fewer sessions."""

from __future__ import annotations

import pytest


def test_the_bench_runs_and_interleaving_decides_sooner(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import common
    from bench import experiments as bench

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    out = bench.main(["--runs", "3", "--queries", "100", "--max-sessions", "100000"])
    ab = out["methods"]["A/B (mSPRT on click-through)"]
    inter = out["methods"]["interleaving (team draft, sequential sign test)"]
    assert out["quality"]["A"] > out["quality"]["B"]
    assert inter["decided"] == 3 and inter["wrong"] == 0 and ab["wrong"] == 0
    assert ab["decided"] == 0 or inter["median_sessions"] < ab["median_sessions"]
    assert (tmp_path / "experiments.json").exists()
