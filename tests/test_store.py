from __future__ import annotations

import time

import pytest

from shoprank.data.records import parse_event, parse_judgment, parse_product
from shoprank.store import SQLiteStore

NOW = time.time()


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as s:
        yield s


def ev(event_id, user="u1", item="p1", t=0.0, type_="click"):
    return parse_event({"event_id": event_id, "user_id": user, "item_id": item, "type": type_,
                        "timestamp": NOW - 1000 + t})


def test_wal_and_full_sync(store):
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_products_upsert_by_id(store):
    r1 = store.upsert_products([parse_product({"id": "a", "title": "one"})])
    r2 = store.upsert_products([parse_product({"id": "a", "title": "two"}), parse_product({"id": "b", "title": "x"})])
    assert (r1.stored, r2.stored, r2.updated) == (1, 1, 1)
    assert store.get_product("a").title == "two"
    assert store.counts()["products"] == 2


def test_events_idempotent_by_event_id(store):
    assert store.append_events([ev("e1"), ev("e2", t=1)]).stored == 2
    again = store.append_events([ev("e1"), ev("e3", t=2)])
    assert (again.stored, again.duplicates) == (1, 1)
    assert [e.event_id for e in store.iter_events()] == ["e1", "e2", "e3"]


def test_user_events_are_the_latest_oldest_first(store):
    store.append_events([ev(f"e{i}", t=i) for i in range(10)])
    assert [e.event_id for e in store.user_events("u1", limit=3)] == ["e7", "e8", "e9"]


def test_batch_is_all_or_nothing(store, monkeypatch):
    store.append_events([ev("e1")])
    bad = [ev("e2"), ev("e3")]
    original = store._conn

    class Failing:
        def __getattr__(self, name):
            return getattr(original, name)

        def executemany(self, *args):
            original.executemany(*args)
            raise OSError("disk failed after the rows were written")

    monkeypatch.setattr(store, "_conn", Failing())
    with pytest.raises(OSError):
        store.append_events(bad)
    monkeypatch.setattr(store, "_conn", original)
    assert store.counts()["events"] == 1


def test_changes_since_version(store):
    store.upsert_products([parse_product({"id": "a", "title": "one"})])
    v = store.catalog_version()
    store.upsert_products([parse_product({"id": "b", "title": "two"})])
    store.delete_products(["a"])
    changed, deleted, current = store.products_changed_since(v)
    assert [p.id for p in changed] == ["b"] and deleted == ["a"] and current == v + 2


def test_judgments_and_settings(store):
    store.upsert_judgments([parse_judgment({"query": "q", "product_id": "a", "grade": 1})])
    store.upsert_judgments([parse_judgment({"query": "q", "product_id": "a", "grade": 3})])
    assert [j.grade for j in store.judgments()] == [3.0]
    store.set_setting("diversity", {"lambda": 0.3})
    assert store.get_setting("diversity") == {"lambda": 0.3}
    assert store.get_setting("missing", 7) == 7
    assert store.check_integrity() == []


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as s:
        s.append_events([ev("e1")])
    with SQLiteStore(path) as s:
        assert s.counts()["events"] == 1
