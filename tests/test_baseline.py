"""The baseline bundle: a brand-new shop answers search, recommendations, similar and bought-together at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shoprank.abtest.book import start_experiment
from shoprank.abtest.config import parse_experiment
from shoprank.baseline import embed_and_publish, is_baseline, publish_recommend, read_progress
from shoprank.bundles import latest_version, list_versions
from shoprank.data.records import Event, Product
from shoprank.keys import KeyStore
from shoprank.retention import KEEP_BASELINES, prune
from shoprank.serving import ServingConfig, create_app
from shoprank.shops import Shop
from tests.support.serving import client

pytestmark = pytest.mark.anyio

TITLES = {
    "drill-1": "cordless drill 18v lithium", "drill-2": "hammer drill corded 750w", "bits-1": "drill bit set titanium",
    "hose-1": "garden hose 50 ft", "hose-2": "expandable garden hose", "nozzle-1": "hose nozzle spray",
    "paint-1": "interior wall paint white", "brush-1": "paint brush set", "roller-1": "paint roller frame",
    "saw-1": "circular saw 7 1/4 in",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fresh_shop(home: Path, events: bool = True) -> Shop:
    shop = Shop("fresh", home)
    with shop.store() as store:
        store.upsert_products([Product(pid, title, category="Home > " + pid.split("-")[0], brand="acme", price=10.0)
                               for pid, title in TITLES.items()])
        if events:
            now = time.time() - 3600
            log = []
            for u in range(6):  # every shopper buys a drill and then bits: bought together
                log += [Event(f"e{u}a", f"u{u}", "drill-1", "purchase", now + u * 10),
                        Event(f"e{u}b", f"u{u}", "bits-1", "purchase", now + u * 10 + 1)]
            log += [Event(f"h{u}", f"v{u}", "hose-1", "view", now + u) for u in range(3)]
            store.append_events(log)
    return shop


def eager_refresh_app(home: Path) -> tuple[Any, str, Any]:
    """A fresh shop without events behind an app whose baseline worker refreshes at the first new event."""
    fresh_shop(home, events=False)
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    worker = app.state.registry.baseline
    worker.refresh_seconds, worker.refresh_events = 0.0, 1
    return app, key, worker


def make_app(home: Path, **config: Any) -> Any:
    app = create_app(home, config=ServingConfig(watch_seconds=0, baseline_embeddings=False, **config))
    app.state.registry.load_all()  # what the lifespan does in a server
    return app


async def test_fresh_shop_answers_every_surface_from_the_baseline(home: Path) -> None:
    fresh_shop(home)
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        search = (await c.get("/shops/fresh/search", params={"q": "garden hose", "per_page": 3})).json()
        new_user = (await c.get("/shops/fresh/users/nobody/recommendations", params={"k": 3})).json()
        buyer = (await c.get("/shops/fresh/users/u1/recommendations", params={"k": 3})).json()
        similar = (await c.get("/shops/fresh/products/hose-1/similar", params={"k": 2})).json()
        together = (await c.get("/shops/fresh/products/drill-1/bought-together", params={"k": 2})).json()
        put = await c.put("/shops/fresh/products", json={"products": [{"id": "new-1", "title": "zyzzyva ladder"}]})
        found = (await c.get("/shops/fresh/search", params={"q": "zyzzyva"})).json()
        status = (await c.get("/admin/status")).json()
    app.state.registry.close()
    assert [h["id"] for h in search["hits"]][:2] in (["hose-1", "hose-2"], ["hose-2", "hose-1"])
    assert is_baseline(search["model_version"]) and search["model_version"].startswith("baseline-")
    assert new_user["items"][0]["id"] in ("drill-1", "bits-1")  # trending: the purchases weigh most
    assert is_baseline(new_user["model_version"])
    assert buyer["items"] and all(i["id"] not in ("drill-1", "bits-1") for i in buyer["items"])  # seen: left out
    assert similar["items"][0]["id"] in ("hose-2", "nozzle-1")  # shares words with "garden hose 50 ft"
    assert [i["id"] for i in together["items"]] == ["bits-1"]
    assert put.status_code == 200 and found["hits"][0]["id"] == "new-1"
    models = status["shops"]["fresh"]["models"]
    assert models["search"]["state"] == "ready" and is_baseline(models["search"]["version"])


async def test_products_arriving_after_the_server_opened_the_shop(home: Path) -> None:
    shop = Shop("later", home)
    shop.store().close()  # an empty shop: nothing to serve yet
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        before = await c.get("/shops/later/search", params={"q": "drill"})
        await c.put("/shops/later/products", json={"products": [{"id": "d1", "title": "cordless drill"},
                                                                {"id": "h1", "title": "garden hose"}]})
        after = (await c.get("/shops/later/search", params={"q": "drill"})).json()
        recs = (await c.get("/shops/later/users/x/recommendations", params={"k": 2})).json()
    app.state.registry.close()
    assert before.status_code == 409
    assert [h["id"] for h in after["hits"]] == ["d1"] and is_baseline(after["model_version"])
    assert {i["id"] for i in recs["items"]} == {"d1", "h1"}


async def test_no_baseline_over_a_trained_bundle_and_baseline_off(home: Path) -> None:
    from shoprank.bundles import publish

    shop = fresh_shop(home, events=False)
    with publish(shop.models_path, "search", {"trained": True}) as folder:
        (folder / "x.json").write_text("{}")
    trained = latest_version(shop.models_path, "search")
    from shoprank.baseline import publish_search

    assert publish_search(shop) == (None, None)
    assert latest_version(shop.models_path, "search") == trained
    key, _ = KeyStore(home).create("admin")
    app = make_app(home, baseline=False)
    async with client(app, key) as c:
        recs = await c.get("/shops/fresh/users/x/recommendations")
    app.state.registry.close()
    assert recs.status_code == 409 and recs.json()["error"]["code"] == "no_recommend_model"


async def test_embeddings_in_the_background_swap_in_hybrid_search(home: Path) -> None:
    pytest.importorskip("sentence_transformers")
    shop = fresh_shop(home)
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        lexical = (await c.get("/shops/fresh/search", params={"q": "garden hose"})).json()
        seen: list[dict[str, Any]] = []
        info = embed_and_publish(shop, seen.append)  # what the server's worker runs in its thread
        report = app.state.registry.reload("fresh")
        hybrid = (await c.get("/shops/fresh/search", params={"q": "lawn watering hosepipe"})).json()
        similar = (await c.get("/shops/fresh/products/hose-1/similar", params={"k": 2})).json()
    app.state.registry.close()
    assert info["stage"] == "done" and seen[0]["done"] == 0 and seen[-1]["done"] == len(TITLES)
    assert read_progress(shop)["stage"] == "done"
    assert report["search"]["status"] == "reloaded" and report["recommend"]["status"] == "reloaded"
    assert hybrid["model_version"] != lexical["model_version"] and is_baseline(hybrid["model_version"])
    # no word of the query is in the catalogue: the hoses match by meaning alone (cosine 0.59-0.62 with the
    # untuned MiniLM, above its default threshold 0.462; the nozzle is at 0.45, every other product below 0.11)
    hits = {h["id"] for h in hybrid["hits"]}
    assert {"hose-1", "hose-2"} <= hits <= {"hose-1", "hose-2", "nozzle-1"} and hybrid["total"] == len(hits)
    assert all(h["parts"]["bm25"] == 0 and h["parts"]["dense"] >= 0.462 for h in hybrid["hits"])
    assert {i["id"] for i in similar["items"]} & {"hose-2", "nozzle-1"}


def test_demo_trains_only_what_is_untrained_and_announces_swaps(home: Path, capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    import threading
    from types import SimpleNamespace

    from shoprank.bundles import publish
    from shoprank.cli.demo_cmds import _training_commands
    from shoprank.serving.demo import announce_swaps

    hd = Shop("homedepot", home)
    hd.store().close()
    with publish(hd.models_path, "search", {}) as folder:  # trained
        (folder / "x.json").write_text("{}")
    games = Shop("games", home)
    games.store().close()
    with publish(games.models_path, "recommend", {}, version_prefix="baseline-") as folder:  # only a baseline
        (folder / "x.json").write_text("{}")
    assert [c[:4] for c in _training_commands(str(home), "demo", 2)] == [["train", "recommend", "--shop", "games"]]

    slot = SimpleNamespace(version=latest_version(games.models_path, "recommend"), engine=object())
    state = SimpleNamespace(name="games", shop=games, slots={"recommend": slot})
    registry = SimpleNamespace(loaded=lambda: [state])
    stop = threading.Event()
    done = SimpleNamespace(poll=lambda: 0, returncode=0)  # training has ended ...
    with publish(games.models_path, "recommend", {}) as folder:  # ... and published what the server has not swapped
        (folder / "x.json").write_text("{}")
    trained = latest_version(games.models_path, "recommend")
    watcher = threading.Thread(target=announce_swaps, args=(registry, done, stop, 0.01))
    watcher.start()
    time.sleep(0.2)
    early = capsys.readouterr().out
    state.slots["recommend"] = SimpleNamespace(version=trained, engine=object())
    deadline, said = time.monotonic() + 5, ""
    while "training finished" not in said and time.monotonic() < deadline:  # polls what was printed
        said += capsys.readouterr().out
        time.sleep(0.01)
    stop.set()
    watcher.join()
    assert "training finished" not in early  # not before the server serves the trained model
    assert f"shop 'games' now serves recommend model {trained} (was {slot.version})" in said
    assert said.index(trained) < said.index("background training finished (exit 0)")


async def test_item_to_item_follows_events_as_they_arrive(home: Path) -> None:
    app, key, worker = eager_refresh_app(home)
    async with client(app, key) as c:
        before = (await c.get("/shops/fresh/products/hose-1/bought-together")).json()
        now = time.time() - 60
        events = [{"event_id": f"b{u}{n}", "user_id": f"b{u}", "item_id": item, "type": "purchase",
                   "timestamp": now + u * 5 + n} for u in range(4) for n, item in enumerate(["hose-1", "nozzle-1"])]
        assert (await c.post("/shops/fresh/events", json={"events": events})).status_code == 200
        version = before["model_version"]
        worker.tick()  # what the server's watcher does every few seconds
        deadline = time.monotonic() + 60
        while app.state.registry.get("fresh").slots["recommend"].version == version and time.monotonic() < deadline:
            await anyio_sleep(0.05)  # polls the slot, the refresh runs in the worker thread
        after = (await c.get("/shops/fresh/products/hose-1/bought-together")).json()
    app.state.registry.close()
    assert before["items"] == []
    assert after["model_version"] != version and after["model_version"].startswith("baseline-")
    assert [i["id"] for i in after["items"]] == ["nozzle-1"]


async def anyio_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


async def test_a_shop_without_events_is_not_republished(home: Path) -> None:
    app, key, worker = eager_refresh_app(home)
    shop = Shop("fresh", home)
    async with client(app, key) as c:
        answer = (await c.get("/shops/fresh/users/nobody/recommendations")).json()  # the first baseline bundle
        first = list_versions(shop.models_path, "recommend")
        for _ in range(3):  # what the server's watcher does every few seconds
            worker.tick()
            deadline = time.monotonic() + 30
            while (worker._queued or not worker._jobs.empty()) and time.monotonic() < deadline:
                await anyio_sleep(0.05)
    app.state.registry.close()
    assert is_baseline(answer["model_version"]) and first == [answer["model_version"]]
    assert len(first) == 1 and list_versions(shop.models_path, "recommend") == first


def test_older_baseline_bundles_are_removed_but_not_pinned_or_trained_ones(home: Path) -> None:
    shop = fresh_shop(home)
    (shop.models_path / "recommend" / "20261201-000000-0000-trained").mkdir(parents=True)  # never a baseline's
    versions = []
    for _ in range(3):
        versions.append(publish_recommend(shop))
        time.sleep(0.01)
    with shop.store() as store:  # an experiment serving the first baseline by name keeps it
        experiment = parse_experiment("old-vs-new", {
            "kind": "ab", "surface": "recommend", "traffic": {"a": 0.5, "b": 0.5},
            "variants": {"a": {"recommend_model": versions[0]}, "b": {}}},
            versions=lambda kind: list_versions(shop.models_path, kind))
        start_experiment(store, experiment)
    for _ in range(3):
        versions.append(publish_recommend(shop))
        time.sleep(0.01)
    kept = list_versions(shop.models_path, "recommend")
    assert kept == sorted(["20261201-000000-0000-trained", versions[0], *versions[-KEEP_BASELINES:]])
    assert latest_version(shop.models_path, "recommend") == versions[-1]
    assert prune(shop, "recommend") == []  # nothing more to remove
