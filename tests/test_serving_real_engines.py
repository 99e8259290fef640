"""The API over the real engines, trained in seconds on tiny shops (the search and recommender test fixtures)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from shoprank.shops import Shop
from tests.support.serving import client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def train_search_shop(home: Path) -> Shop:
    from tests.test_search_helpers import train_tiny_search

    shop = Shop("hardware", home)
    train_tiny_search(shop)
    return shop


def train_recommend_shop(home: Path) -> Shop:
    from tests.test_recommend_service import make_shop, train

    shop = make_shop(home)
    train(shop)
    return shop


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    home = tmp_path_factory.mktemp("real")
    train_search_shop(home)
    train_recommend_shop(home)  # shop "tiny": recommendations only
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0, baseline_embeddings=False))
    app.state.registry.load_all()
    yield app, key
    app.state.registry.close()


async def test_real_search_with_facets_and_incremental_products(real: Any) -> None:
    app, key = real
    async with client(app, key) as c:
        answer = await c.get("/shops/hardware/search", params={"q": "cordless drill", "per_page": 5, "diversity": 0})
        body = answer.json()
        put = await c.put("/shops/hardware/products", json={"products": [
            {"id": "new-1", "title": "zyzzyva drill press", "category": "Home > Tools", "brand": "acme", "price": 99}]})
        found = (await c.get("/shops/hardware/search", params={"q": "zyzzyva"})).json()
        await c.delete("/shops/hardware/products/new-1")
        gone = (await c.get("/shops/hardware/search", params={"q": "zyzzyva"})).json()
        recs = await c.get("/shops/hardware/users/u1/recommendations")
    assert answer.status_code == 200, answer.text
    assert body["hits"] and all(h["id"].startswith("drill-") for h in body["hits"])
    assert {"bm25", "dense", "fusion"} <= set(body["hits"][0]["parts"]) and body["hits"][0]["reasons"]
    assert body["facets"]["category"] and body["total"] >= 5
    assert put.status_code == 200 and found["hits"][0]["id"] == "new-1"
    assert "new-1" not in {h["id"] for h in gone["hits"]}
    assert recs.status_code == 200 and recs.json()["model_version"].startswith("baseline-")  # no trained one


async def test_real_recommendations_follow_posted_events(real: Any) -> None:
    app, key = real
    async with client(app, key) as c:
        cold = (await c.get("/shops/tiny/users/newcomer/recommendations", params={"k": 5})).json()["items"]
        events = [{"event_id": f"rt-{n}", "user_id": "newcomer", "item_id": f"p2-{n}", "type": "purchase",
                   "timestamp": time.time() - 60 + n} for n in range(4)]
        posted = await c.post("/shops/tiny/events", json={"events": events})
        warm = (await c.get("/shops/tiny/users/newcomer/recommendations", params={"k": 5})).json()["items"]
        similar = await c.get("/shops/tiny/products/p2-0/similar", params={"k": 3})
        together = await c.get("/shops/tiny/products/p2-0/bought-together", params={"k": 3})
        search = await c.get("/shops/tiny/search", params={"q": "halo"})
    assert posted.json() == {"stored": 4, "duplicates": 0}
    assert len(cold) == 5 and len(warm) == 5
    topic = sum(i["id"].startswith("p2-") for i in warm)
    assert topic > sum(i["id"].startswith("p2-") for i in cold) and topic >= 3  # shifted toward "halo rifle"
    assert all(i["reasons"] for i in warm)
    assert similar.status_code == 200 and similar.json()["items"]
    assert together.status_code == 200
    assert search.status_code == 200 and search.json()["model_version"].startswith("baseline-")


def test_search_personalised_by_the_users_categories(tmp_path: Path) -> None:
    import time

    from shoprank.data.records import Event
    from shoprank.search import SearchEngine

    shop = train_search_shop(tmp_path)
    now = time.time()
    with shop.store() as store:
        store.append_events([Event(f"p-{n}", "fan", f"faucet-{n}", "purchase", now - 100 + n) for n in range(3)])
    engine = SearchEngine.load(shop)
    plain, total = engine.search("cordless model", k=48)
    mine, total_mine = engine.search("cordless model", k=48, user_id="fan")
    assert total == total_mine and {i.id for i in plain} == {i.id for i in mine}  # reordered, not refiltered
    rank = {i.id: n for n, i in enumerate(plain)}
    rank_mine = {i.id: n for n, i in enumerate(mine)}
    faucets = [pid for pid in rank if pid.startswith("faucet")]
    assert faucets and all(rank_mine[pid] <= rank[pid] for pid in faucets)
    assert sum(rank_mine[pid] for pid in faucets) < sum(rank[pid] for pid in faucets)
    boosted = [i for i in mine if i.id.startswith("faucet") and i.parts]  # the ranked head (the rest of the
    assert boosted and all("you like Bath" in i.reasons and i.parts["personal"] > 0 for i in boosted)
    assert all("personal" not in i.parts for i in mine if not i.id.startswith("faucet"))
    assert engine.search("cordless model", k=48, user_id="nobody")[0] == plain  # no events: no change
