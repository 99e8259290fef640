"""Every answer is logged off the request path; clicks carrying its request id are attributed to it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shoprank.data.impressions import Impression
from shoprank.keys import KeyStore
from shoprank.serving.impressions import ImpressionLog
from shoprank.shops import Shop
from shoprank.store.sqlite import SQLiteStore
from tests.support.waiting import poll
from tests.test_baseline import client, fresh_shop, make_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_answers_carry_request_ids_and_are_recorded_with_positions(home: Path) -> None:
    shop = fresh_shop(home)
    Shop("other", home).store().close()
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        page1 = (await c.get("/shops/fresh/search", params={"q": "drill", "per_page": 2, "user_id": "u7"})).json()
        page2 = (await c.get("/shops/fresh/search", params={"q": "drill", "per_page": 2, "page": 2})).json()
        recs = (await c.get("/shops/fresh/users/u1/recommendations", params={"k": 3})).json()
        similar = (await c.get("/shops/fresh/products/hose-1/similar", params={"k": 2})).json()
        together = (await c.get("/shops/fresh/products/drill-1/bought-together", params={"k": 2})).json()
        nothing = (await c.get("/shops/fresh/search", params={"q": "xylophone"})).json()
        second = page2["hits"][0]["id"]  # "drill" finds three products: page 2 holds the third
        now = time.time()
        posted = (await c.post("/shops/fresh/events", json={"events": [  # before any flush: attributed from memory
            {"event_id": "c1", "user_id": "u7", "item_id": second, "type": "click", "timestamp": now,
             "request_id": page2["request_id"]},
            {"event_id": "c2", "user_id": "u7", "item_id": second, "type": "click", "timestamp": now,
             "request_id": "never-answered"},
            {"event_id": "c3", "user_id": "u7", "item_id": page1["hits"][0]["id"], "type": "purchase",
             "timestamp": now, "request_id": page1["request_id"], "position": 7},  # forged position
        ]})).json()
        assert app.state.impressions.flush()
        metrics = (await c.get("/metrics")).text
    app.state.impressions.close()
    app.state.registry.close()
    ids = [page1["request_id"], page2["request_id"], recs["request_id"], similar["request_id"],
           together["request_id"]]
    assert len(set(ids)) == 5 and nothing["request_id"] and not nothing["hits"]
    with shop.store() as store:
        found = store.get_impressions([*ids, nothing["request_id"]])
        by_event = {e.event_id: e for e in store.iter_events()}
    empty = found[nothing["request_id"]]  # an empty search answer is recorded: a zero-result query
    assert (empty.items, empty.total, empty.query) == ((), 0, "xylophone")
    first, second_page = found[page1["request_id"]], found[page2["request_id"]]
    assert first.items == tuple(h["id"] for h in page1["hits"]) and first.positions == (0, 1)
    assert (first.surface, first.query, first.user_id, first.page) == ("search", "drill", "u7", 1)
    assert second_page.positions == (2,) and second_page.model_version == page2["model_version"]
    assert found[recs["request_id"]].surface == "recommendations" and found[recs["request_id"]].user_id == "u1"
    assert (found[similar["request_id"]].surface, found[similar["request_id"]].item_id) == ("similar", "hose-1")
    assert found[together["request_id"]].surface == "bought_together"
    assert posted == {"stored": 3, "duplicates": 0, "attributed": 1, "unattributed": 2}
    assert (by_event["c1"].request_id, by_event["c1"].position, by_event["c1"].query) == \
        (page2["request_id"], 2, "drill")
    assert by_event["c2"].request_id is None and by_event["c3"].request_id is None and by_event["c3"].position == 7
    assert "shoprank_events_attributed_total 1" in metrics
    assert "shoprank_events_unattributed_unknown_request_total 1" in metrics
    assert "shoprank_events_unattributed_position_beyond_list_total 1" in metrics
    assert "shoprank_impressions_written_total 6" in metrics  # the empty search answer too


async def test_another_shops_request_id_is_not_attributed(home: Path) -> None:
    fresh_shop(home)
    other = Shop("other", home)
    with other.store() as store:
        from shoprank.data.records import Product

        store.upsert_products([Product("drill-1", "cordless drill")])
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        theirs = (await c.get("/shops/other/search", params={"q": "drill"})).json()
        posted = (await c.post("/shops/fresh/events", json={"events": [
            {"event_id": "x1", "user_id": "u", "item_id": "drill-1", "type": "click", "timestamp": time.time(),
             "request_id": theirs["request_id"]}]})).json()
    app.state.impressions.close()
    app.state.registry.close()
    assert theirs["hits"][0]["id"] == "drill-1"
    assert posted == {"stored": 1, "duplicates": 0, "attributed": 0, "unattributed": 1}


class StalledStore(SQLiteStore):
    """A store whose impression writes block until released: a locked, slow or hung disk."""

    def __init__(self, path: Path, release: threading.Event, entered: threading.Event) -> None:
        super().__init__(path)
        self.release, self.entered = release, entered

    def append_impressions(self, impressions: Any) -> Any:
        self.entered.set()
        self.release.wait()
        return super().append_impressions(impressions)


async def test_a_stalled_store_never_delays_an_answer_and_drops_are_counted(home: Path) -> None:
    shop = fresh_shop(home)
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    release, entered = threading.Event(), threading.Event()
    metrics = app.state.metrics
    stalled = ImpressionLog(lambda name: StalledStore(Shop(name, home).store_path, release, entered), metrics.count,
                            capacity=5, batch=2, flush_seconds=0.01)
    app.state.impressions.close()
    app.state.impressions = stalled
    answers = []
    async with client(app, key) as c:
        answers.append(await c.get("/shops/fresh/search", params={"q": "drill"}))
        assert poll(entered.is_set)  # the writer now hangs inside the store with that first impression
        for n in range(30):
            answers.append(await c.get("/shops/fresh/search", params={"q": f"drill {n}"}))
        text = (await c.get("/metrics")).text
    assert all(a.status_code == 200 and a.json()["hits"] for a in answers)
    assert stalled.dropped == 31 - 1 - 5  # one in the hung write, five queued, the rest dropped
    assert f"shoprank_impressions_dropped_total {stalled.dropped}" in text
    release.set()
    assert stalled.flush()
    stalled.close()
    app.state.registry.close()
    with shop.store() as store:
        assert store.counts()["impressions"] == 6  # everything that was queued got written


def test_queue_bound_and_close_writes_what_is_queued(tmp_path: Path) -> None:
    counts: dict[str, int] = {}

    def count(name: str, n: int) -> None:
        counts[name] = counts.get(name, 0) + n

    path = tmp_path / "s.sqlite"
    SQLiteStore(path).close()
    log = ImpressionLog(lambda name: SQLiteStore(path), count, capacity=100, batch=10, flush_seconds=5)
    for n in range(40):
        assert log.record("s", Impression(f"r{n}", 1_700_000_000.0 + n, "search", ("a",), (0,)))
    assert log.lookup("s", ["r3"])["r3"].request_id == "r3"  # attributable before it is written
    log.close()
    store = SQLiteStore(path)
    assert store.counts()["impressions"] == 40 and counts["impressions_written"] == 40
    store.close()


def test_retention_deletes_old_impressions(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    now = time.time()
    store.append_impressions([Impression("old", now - 100 * 86_400, "search", ("a",), (0,)),
                              Impression("new", now - 10 * 86_400, "search", ("a",), (0,))])
    log = ImpressionLog(lambda name: SQLiteStore(path), lambda *a: None, retention_days=90, shops=lambda: ["s"])
    log.start()  # the writer sweeps at start
    assert poll(lambda: "old" not in store.get_impressions(["old"]))
    log.close()
    assert list(store.get_impressions(["old", "new"])) == ["new"]
    store.close()


def test_kill_9_loses_at_most_the_queue_and_never_an_acknowledged_event(home: Path) -> None:
    """A real server process killed with SIGKILL right after answering: every acknowledged event is in the store,
    attributed as it was acknowledged (the click arrived before its impression was necessarily written)."""
    import httpx

    from tests.test_serving_server import start_server

    shop = fresh_shop(home)
    process, url, _ = start_server(home, "--open", "--no-baseline-embeddings", "--watch", "0")
    acknowledged = []
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            answers = [c.get("/shops/fresh/search", params={"q": q}).json() for q in ("drill", "hose", "paint")]
            for n, answer in enumerate(answers):
                event = {"event_id": f"k{n}", "user_id": "u", "item_id": answer["hits"][0]["id"], "type": "click",
                         "timestamp": time.time(), "request_id": answer["request_id"]}
                posted = c.post("/shops/fresh/events", json={"events": [event]})
                assert posted.status_code == 200 and posted.json()["attributed"] == 1  # from memory, not flushed
                acknowledged.append(event["event_id"])
    finally:
        process.kill()  # SIGKILL: no shutdown, no flush
        process.wait()
    with shop.store() as store:
        stored = {e.event_id: e for e in store.iter_events()}
    assert set(acknowledged) <= set(stored)  # never an acknowledged event
    assert all(stored[e].request_id for e in acknowledged)  # attributed as acknowledged
