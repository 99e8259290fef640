"""Model bundles in a running app: reload on request or by watching, atomic swap, corrupt bundles refused."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shoprank.bundles import latest_version
from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from shoprank.shops import Shop
from tests.support.fakes import FAKE_LOADERS, FakeSearchEngine, publish_fake_bundle, tiny_shop
from tests.support.serving import client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Shop, str]:
    shop = tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    yield app, shop, key
    app.state.registry.close()


def corrupt(shop: Shop, kind: str) -> str:
    """A new bundle with one file damaged (as a bad disk or a half copy would), made elsewhere and moved in
    whole, so a watcher never sees it undamaged."""
    import os

    elsewhere = Shop(shop.name, shop.home.parent / f"{shop.home.name}-corrupt")
    version = publish_fake_bundle(elsewhere, kind)
    with (elsewhere.models_path / kind / version / "weights.json").open("a") as handle:
        handle.write(" ")
    (shop.models_path / kind).mkdir(parents=True, exist_ok=True)
    os.rename(elsewhere.models_path / kind / version, shop.models_path / kind / version)
    pointer = shop.models_path / kind / ".LATEST.corrupt"
    pointer.write_text(version)
    os.replace(pointer, shop.models_path / kind / "LATEST")  # what a publisher's last step does
    return version


async def version_of(c: httpx.AsyncClient) -> str:
    return (await c.get("/shops/tiny/search", params={"q": "drill"})).json()["model_version"]


async def test_reload_on_request_switches_to_the_new_bundle(setup: tuple[Any, Shop, str]) -> None:
    app, shop, key = setup
    async with client(app, key) as c:
        old = await version_of(c)
        unchanged = (await c.post("/admin/reload")).json()
        new = publish_fake_bundle(shop, "search")
        answer = (await c.post("/admin/reload", params={"shop": "tiny"})).json()
        assert await version_of(c) == new != old
    assert unchanged["shops"]["tiny"]["search"]["status"] == "unchanged"
    assert answer["ok"] and answer["shops"]["tiny"]["search"] == {"status": "reloaded", "version": new,
                                                                   "previous": old}


async def test_a_corrupt_bundle_is_refused_and_the_last_good_one_serves(setup: tuple[Any, Shop, str]) -> None:
    app, shop, key = setup
    async with client(app, key) as c:
        good = await version_of(c)
        bad = corrupt(shop, "search")
        answer = (await c.post("/admin/reload")).json()
        after = await c.get("/shops/tiny/search", params={"q": "drill"})
        status = (await c.get("/admin/status")).json()
    assert answer["ok"] is False
    assert answer["shops"]["tiny"]["search"]["status"] == "failed"
    assert "checksum" in answer["shops"]["tiny"]["search"]["error"]
    assert after.status_code == 200 and after.json()["model_version"] == good and after.json()["hits"]
    assert status["shops"]["tiny"]["models"]["search"]["failed_version"] == bad


async def test_an_incomplete_bundle_is_refused(setup: tuple[Any, Shop, str]) -> None:
    app, shop, key = setup
    half = shop.models_path / "recommend" / "20990101-000000-half"
    half.mkdir()
    (half / "weights.json").write_text("{}")
    (shop.models_path / "recommend" / "LATEST").write_text(half.name)  # as if the publisher died mid-way
    async with client(app, key) as c:
        answer = (await c.post("/admin/reload", params={"kind": "recommend"})).json()
        recs = await c.get("/shops/tiny/users/u1/recommendations")
    assert answer["shops"]["tiny"]["recommend"]["status"] == "failed"
    assert recs.status_code == 200 and recs.json()["items"]


async def test_a_corrupt_first_bundle_answers_503_not_500(tmp_path: Path) -> None:
    shop = tiny_shop(tmp_path, "tiny", search=False)
    corrupt(shop, "search")
    key, _ = KeyStore(tmp_path).create("admin")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    async with client(app, key) as c:
        answer = await c.get("/shops/tiny/search", params={"q": "drill"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "model_unavailable"


async def test_watching_picks_up_new_bundles_and_skips_corrupt_ones(setup: tuple[Any, Shop, str]) -> None:
    app, shop, key = setup
    registry = app.state.registry
    registry.start_watching(0.05)
    async with client(app, key) as c:
        new = publish_fake_bundle(shop, "search")
        for _ in range(100):
            if await version_of(c) == new:
                break
            await anyio.sleep(0.05)
        assert await version_of(c) == new
        bad = corrupt(shop, "search")
        for _ in range(100):
            if registry.get("tiny").slots["search"].failed_version == bad:
                break
            await anyio.sleep(0.05)
        assert registry.get("tiny").slots["search"].failed_version == bad
        assert await version_of(c) == new


async def test_no_request_fails_during_swaps(setup: tuple[Any, Shop, str]) -> None:
    app, shop, key = setup
    registry = app.state.registry
    statuses: list[int] = []
    stop = threading.Event()

    def swapper() -> None:
        while not stop.is_set():
            publish_fake_bundle(shop, "search")
            registry.reload("tiny", ("search",))

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        async with client(app, key) as c:
            for i in range(40):
                answers = [await c.get("/shops/tiny/search", params={"q": "drill saw"}),
                           await c.put("/shops/tiny/products", json={"products": [{"id": f"n{i}", "title": "Nail"}]})]
                statuses += [a.status_code for a in answers]
            stop.set()
            thread.join()
            final = (await c.get("/shops/tiny/search", params={"q": "nail", "per_page": 100})).json()
    finally:
        stop.set()
        thread.join()
    assert set(statuses) == {200}
    assert {h["id"] for h in final["hits"]} == {f"n{i}" for i in range(40)}  # every acknowledged write kept


class HeldSearch(FakeSearchEngine):
    """Loads, then waits, so that writes land while a new engine is being loaded."""

    loaded = threading.Event()
    release = threading.Event()

    @classmethod
    def load(cls, shop: Shop) -> FakeSearchEngine:
        engine = super().load(shop)
        if cls.release.is_set():
            return engine
        cls.loaded.set()
        cls.release.wait(10)
        return engine


async def test_writes_during_a_reload_reach_the_new_engine(tmp_path: Path) -> None:
    shop = tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    HeldSearch.release.set()
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0),
                     loaders={**FAKE_LOADERS, "search": HeldSearch.load})
    app.state.registry.load_all()
    HeldSearch.release.clear()
    new = publish_fake_bundle(shop, "search")
    reload = threading.Thread(target=app.state.registry.reload, args=("tiny", ("search",)))
    reload.start()
    assert HeldSearch.loaded.wait(10)
    async with client(app, key) as c:
        put = await c.put("/shops/tiny/products", json={"products": [{"id": "late", "title": "Latecomer Lamp"}]})
        HeldSearch.release.set()
        reload.join()
        answer = (await c.get("/shops/tiny/search", params={"q": "latecomer"})).json()
    assert put.status_code == 200
    assert answer["model_version"] == new == latest_version(shop.models_path, "search")
    assert [h["id"] for h in answer["hits"]] == ["late"]
    app.state.registry.close()


async def test_catalogue_changes_from_other_processes_reach_the_engines(setup: tuple[Any, Shop, str]) -> None:
    from shoprank.data.records import parse_product

    app, shop, key = setup
    with shop.store() as store:  # as 'shoprank ingest' would, beside the server
        store.upsert_products([parse_product({"id": "cli-1", "title": "Ingested Ironing Board"})])
    async with client(app, key) as c:
        posted = await c.post("/shops/tiny/events", json={"events": [
            {"event_id": "cli-e", "user_id": "u1", "item_id": "cli-1", "type": "view", "timestamp": time.time() - 1}]})
        found = (await c.get("/shops/tiny/search", params={"q": "ironing"})).json()
    assert posted.status_code == 200
    assert [h["id"] for h in found["hits"]] == ["cli-1"]
