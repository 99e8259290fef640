"""Scenario 5 of the reliability list: the disk fills up under the store."""

from __future__ import annotations

import subprocess
import time

import pytest

from shoprank.data.records import parse_event
from shoprank.store import SQLiteStore, StoreFullError

NOW = time.time()


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def batch(b, size=200):
    return [parse_event({"event_id": f"b{b}-{i}", "user_id": f"user-{i % 50}", "item_id": f"item-{b}-{i}" * 3,
                         "type": "view", "timestamp": NOW - 10_000 + i}) for i in range(size)]


def test_disk_full_refuses_writes_keeps_reads_and_recovers(small_disk):
    store = SQLiteStore(small_disk / "store.sqlite")
    acknowledged = 0
    with pytest.raises(StoreFullError, match="full"):
        for b in range(10_000):
            store.append_events(batch(b))
            acknowledged += 200
    assert acknowledged > 0
    # reads keep working and hold exactly the acknowledged batches
    assert store.counts()["events"] == acknowledged
    assert len(store.user_events("user-1", limit=5)) == 5
    assert store.check_integrity() == []
    # space returns: writes work again
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert store.append_events(batch(99_999)).stored == 200
    assert store.counts()["events"] == acknowledged + 200
    store.close()
