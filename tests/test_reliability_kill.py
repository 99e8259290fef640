"""Scenarios 1-3 of the reliability list, small: real processes killed with SIGKILL at a few random points.

The long run is ``python -m bench.reliability`` (20 kill points per scenario); these use the same harness.
"""

from __future__ import annotations

from pathlib import Path

from bench.reliability import Batch, Outcome, check_batches, run_ingest, run_publish, run_serve, run_train


def assert_clean(outcome: Outcome, kills: int) -> None:
    assert outcome.kills == kills
    assert outcome.acknowledged > 0
    assert (outcome.lost, outcome.duplicates, outcome.partial, outcome.failed_reads) == (0, 0, 0, 0), outcome.notes
    assert outcome.leftovers == 0, outcome.notes
    assert len(outcome.restarts) == kills


def test_the_checker_sees_a_lost_and_a_half_stored_batch(tmp_path: Path) -> None:
    from shoprank.data.records import parse_event
    from shoprank.store import SQLiteStore

    db = tmp_path / "store.sqlite"
    with SQLiteStore(db) as store:
        store.append_events([parse_event({"event_id": f"e{i}", "user_id": "u", "item_id": "p", "type": "view",
                                          "timestamp": 1_700_000_000 + i}) for i in range(3)])
    batches = [Batch("events", ["e0", "e1"], acked=True), Batch("events", ["e2", "e3"]),
               Batch("events", ["e4"], acked=True), Batch("events", ["e5"])]
    outcome = Outcome("known answer")
    check_batches(batches, db, outcome, set())
    assert (outcome.lost, outcome.partial, outcome.duplicates) == (1, 1, 0)


def test_kill_during_ingest_processes(tmp_path: Path) -> None:
    assert_clean(run_ingest(tmp_path, kills=4, seed=1, batch_size=1000), 4)


def test_kill_the_server_during_writes(tmp_path: Path) -> None:
    assert_clean(run_serve(tmp_path, kills=3, seed=2), 3)


def test_kill_during_bundle_publishing(tmp_path: Path) -> None:
    assert_clean(run_publish(tmp_path, kills=3, seed=3, megabytes=1.0), 3)


def test_kill_during_training_keeps_the_last_good_bundle_served(tmp_path: Path) -> None:
    assert_clean(run_train(tmp_path, kills=2, seed=4, trainer="fake"), 2)
