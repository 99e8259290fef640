"""Scenarios 1-2 of the reliability list, small: kill -9 during ingestion, then check every batch."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoprank.store import SQLiteStore

WRITER = r"""
import sys, time
from shoprank.data.ingest import ingest_file
from shoprank.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
for path in sys.argv[2:]:
    ingest_file(store, "events", path)
    print("ACK", path, flush=True)
"""


def make_batches(folder: Path, count: int, size: int) -> list[Path]:
    now = int(time.time()) - 10_000
    paths = []
    for b in range(count):
        rows = [{"event_id": f"b{b}-{i}", "user_id": f"u{i % 17}", "item_id": f"p{i % 31}", "type": "view",
                 "timestamp": now + i} for i in range(size)]
        path = folder / f"batch{b:03d}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        paths.append(path)
    return paths


def run_and_kill(db: Path, batches: list[Path], after_acks: int, delay: float) -> set[str]:
    """Start the writer, wait for ``after_acks`` acknowledgements plus ``delay`` seconds, kill -9."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), *map(str, batches)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = set()
    while len(acked) < after_acks:
        line = proc.stdout.readline()
        if not line:
            break
        acked.add(line.split()[1])
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    return acked | {line.split()[1] for line in out.splitlines() if line.startswith("ACK")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_event_ingestion_loses_no_acknowledged_batch(tmp_path, seed):
    batches = make_batches(tmp_path, count=8, size=4000)
    db = tmp_path / "store.sqlite"
    rng = random.Random(seed)
    acked = run_and_kill(db, batches, after_acks=rng.randint(1, 5), delay=rng.uniform(0.0, 0.15))
    assert len(acked) < len(batches), "the writer finished before the kill"
    with SQLiteStore(db) as store:
        assert store.check_integrity() == []
        stored = {e.event_id for e in store.iter_events()}
        total = store.counts()["events"]
    assert total == len(stored)  # no duplicates
    for path in batches:
        ids = {json.loads(line)["event_id"] for line in path.read_text().splitlines()}
        present = len(ids & stored)
        if str(path) in acked:
            assert present == len(ids), f"acknowledged batch {path.name} lost events"
        assert present in (0, len(ids)), f"{path.name} is half-stored"
    # after the restart the client sends every batch again: the store ends with each event exactly once
    with SQLiteStore(db) as store:
        from shoprank.data.ingest import ingest_file

        for path in batches:
            ingest_file(store, "events", path)
        assert store.counts()["events"] == 8 * 4000
