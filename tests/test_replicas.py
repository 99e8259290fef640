"""Two real ``shoprank serve`` replicas sharing one PostgreSQL store and one models folder.

What is written through one is served by the other (events, products, rules, keys) within the follow interval;
a bundle a trainer publishes is served by both; kill -9 of one loses nothing it acknowledged and the other keeps
answering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.reliability import WriteClient
from bench.replicas import Replica, recommended_ids, search_ids, wait_for
from shoprank.keys import KeyStore
from shoprank.shops import Shop
from tests.support.fakes import publish_fake_bundle, tiny_shop

BOUND_S = 10.0
"""How long a test waits for a write to show on the other replica: the default follow interval is 1 s
(measured by ``python -m bench.scale``); the slack is for a loaded test machine."""


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Replica, Replica, str]]:
    monkeypatch.setenv("SHOPRANK_STORE", pg_url)
    tiny_shop(tmp_path, "tiny")  # records into PostgreSQL, bundles into the shared models folder
    key, _ = KeyStore(tmp_path).create("admin", name="replica test")
    one, two = Replica(tmp_path, pg_url, "--watch", "1"), Replica(tmp_path, pg_url, "--watch", "1")
    try:
        one.start()
        two.start()
        yield one, two, key
    finally:
        one.stop()
        two.stop()


def test_writes_through_one_replica_are_served_by_the_other(replicas: tuple[Replica, Replica, str],
                                                           tmp_path: Path) -> None:
    one, two, key = replicas
    assert not (tmp_path / "tiny" / "store.sqlite").exists() and not (tmp_path / "keys.json").exists()
    with one.client(key) as a, two.client(key) as b:
        # events posted to one change the other's recommendations (it reads histories from the shared store)
        before = recommended_ids(b, "tiny", "newcomer")
        garden = [f"garden-{i}-0" for i in range(3)]
        events = [{"event_id": f"r-{i}", "user_id": "newcomer", "item_id": item, "type": "purchase",
                   "timestamp": time.time() - 10 + i} for i, item in enumerate(garden)]
        assert a.post("/shops/tiny/events", json={"events": events}).json() == {"stored": 3, "duplicates": 0}
        wait_for(lambda: recommended_ids(b, "tiny", "newcomer") != before, BOUND_S)
        after = recommended_ids(b, "tiny", "newcomer")
        assert all(i.startswith("garden-") for i in after[:2]) and not set(after) & set(garden)

        # a product upserted through one is searchable on the other
        put = a.put("/shops/tiny/products", json={"products": [
            {"id": "quantum-1", "title": "Quantum Drill", "category": "Tools > Power Tools", "price": 99}]})
        assert put.status_code == 200, put.text
        wait_for(lambda: "quantum-1" in search_ids(b, "tiny", "quantum"), BOUND_S)
        assert b.get("/shops/tiny/products/quantum-1").json()["product"]["title"] == "Quantum Drill"
        # ... and a delete leaves it
        assert a.delete("/shops/tiny/products/quantum-1").status_code == 200
        wait_for(lambda: search_ids(b, "tiny", "quantum") == [], BOUND_S)

        # a rule set through one is in force on the other
        shown = search_ids(b, "tiny", "puzzle")
        put = a.put("/shops/tiny/rules", json={"rules": [{"id": 1, "action": "hide", "products": [shown[0]]}]})
        assert put.status_code == 200, put.text
        wait_for(lambda: shown[0] not in search_ids(b, "tiny", "puzzle"), BOUND_S)

        # a key created (as 'shoprank keys create --store URL' does) works on both; revoked, on neither
        extra, record = KeyStore(tmp_path).create("search", "tiny")
        for replica in (one, two):
            with replica.client(extra) as c:
                wait_for(lambda c=c: c.get("/shops/tiny/search", params={"q": "drill"}).status_code == 200, BOUND_S)
        KeyStore(tmp_path).revoke(record.id)
        for replica in (one, two):
            with replica.client(extra) as c:
                wait_for(lambda c=c: c.get("/shops/tiny/search", params={"q": "drill"}).status_code == 401, BOUND_S)

        # a bundle published into the shared models folder (as the trainer does) is served by both
        version = publish_fake_bundle(Shop("tiny", tmp_path), "search")

        def serves(c) -> bool:
            return c.get("/admin/status").json()["shops"]["tiny"]["models"]["search"]["version"] == version

        for c in (a, b):
            wait_for(lambda c=c: serves(c), BOUND_S)


def test_kill_9_of_one_replica_loses_nothing_acknowledged(replicas: tuple[Replica, Replica, str]) -> None:
    one, two, key = replicas
    with Shop("tiny").store(create=False) as store:
        items = sorted(p.id for p in store.iter_products())
    writer = WriteClient(one.url, key, "tiny", items)
    writer.start()
    wait_for(lambda: sum(b.acked for b in writer.snapshot()) >= 20, 60, every=0.05)
    retries = writer.retries
    one.kill()  # mid-stream: the writer has a request in flight or about to be
    wait_for(lambda: writer.retries > retries, BOUND_S)  # and its next request found the replica gone
    writer.halt.set()
    writer.join(30)
    batches = writer.snapshot()
    acked = [b for b in batches if b.acked]
    with Shop("tiny").store(create=False) as store:
        events = {e.event_id for e in store.iter_events()}
        products = {p.id for p in store.iter_products()}
    for batch in batches:
        stored = events if batch.kind == "events" else products
        present = sum(i in stored for i in batch.ids)
        assert present in (0, len(batch.ids)), f"half-stored batch {batch}"
        if batch.acked:
            assert present == len(batch.ids), f"acknowledged and lost: {batch}"
    assert len(acked) >= 20 and writer.errors == []
    with two.client(key) as b:  # the survivor keeps answering, with what the dead one acknowledged
        last = next(batch for batch in reversed(acked) if batch.kind == "products")
        token = f"tok{last.ids[0][1:].split('-')[0]}q"  # product w{n}-{i} is titled "Widget tok{n}q {i}"
        wait_for(lambda: last.ids[0] in search_ids(b, "tiny", token), BOUND_S)
        assert b.post("/shops/tiny/events", json={"events": [
            {"event_id": "after-kill", "user_id": "u1", "item_id": items[0], "type": "view",
             "timestamp": time.time()}]}).json()["stored"] == 1
