from __future__ import annotations

import pytest

from shoprank.store import SQLiteStore
from tests.store_behaviour import StoreBehaviour, ev
from tests.store_outcomes_behaviour import OutcomeBehaviour


class TestSQLiteStore(StoreBehaviour, OutcomeBehaviour):
    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: SQLiteStore(tmp_path / "s.sqlite")


def test_wal_and_full_sync(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_batch_is_all_or_nothing(tmp_path, monkeypatch):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append_events([ev("e1")])
    original = store._conn

    class Failing:
        def __getattr__(self, name):
            return getattr(original, name)

        def executemany(self, *args):
            original.executemany(*args)
            raise OSError("disk failed after the rows were written")

    monkeypatch.setattr(store, "_conn", Failing())
    with pytest.raises(OSError):
        store.append_events([ev("e2"), ev("e3")])
    monkeypatch.setattr(store, "_conn", original)
    assert store.counts()["events"] == 1
    store.close()
