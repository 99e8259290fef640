"""Scenarios 9-10 of the reliability list: no data of one shop ever appears in another's answers.

Canary products (a unique token in the title) are planted in shop A, through the store and through the API,
together with events and rules that would pull them into answers; shop B holds the same product ids and user
ids. Every read endpoint of B, asked with B's key and with the admin key, must never show the token; A's keys
get 403 on B.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shoprank.data.records import parse_event, parse_product
from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop

pytestmark = pytest.mark.anyio
CANARY = "qzxcanary"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def canary_products(tag: str) -> list[dict[str, Any]]:
    """Canaries that match the queries B is asked, and one that reuses an id B has too."""
    return [
        {"id": f"canary-{tag}-1", "title": f"{CANARY}{tag} Bosch Drill Saw", "category": "Tools > Power Tools",
         "brand": "Bosch", "price": 10.0},
        {"id": f"canary-{tag}-2", "title": f"{CANARY}{tag} Chef Knife", "category": "Kitchen > Knives",
         "brand": "Zwilling", "price": 12.0},
        {"id": "tools-0-0", "title": f"{CANARY}{tag} Acme Drill", "category": "Tools > Power Tools", "brand": "Acme",
         "price": 5.0},
    ]


def canary_events(ids: list[str], tag: str) -> list[dict[str, Any]]:
    now = time.time() - 600
    users = ["u1", "u2", f"{CANARY}-user-{tag}"]  # u1, u2 exist in B too
    return [{"event_id": f"{CANARY}-{tag}-{u}-{i}", "user_id": user, "item_id": item, "type": "purchase",
             "timestamp": now + u * 10 + i}
            for u, user in enumerate(users) for i, item in enumerate([*ids, "tools-1-0", "kitchen-0-0"])]


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("tenancy")
    a = tiny_shop(home, "shop-a")
    tiny_shop(home, "shop-b")
    planted = canary_products("store")
    with a.store() as store:  # written beside the server, as 'shoprank ingest' would
        store.upsert_products([parse_product(p) for p in planted])
        store.append_events([parse_event(e) for e in canary_events([p["id"] for p in planted], "store")])
    keys = KeyStore(home)
    return home, {
        "admin": keys.create("admin")[0],
        "a-search": keys.create("search", "shop-a")[0],
        "a-storefront": keys.create("storefront", "shop-a")[0],
        "b-storefront": keys.create("storefront", "shop-b")[0],
        "b-search": keys.create("search", "shop-b")[0],
    }


def shown(answer: httpx.Response) -> str:
    """What an answer shows about the shop's data: the body, less the echo of the request's own query."""
    body = answer.json()
    if isinstance(body, dict):
        body.pop("query", None)
    return json.dumps(body)


def b_reads() -> list[str]:
    """Every read of shop B that could show a product or a user, over the ids both shops share."""
    paths = ["/shops", "/shops/shop-b/users?limit=100"]
    for q in ("drill", "knife", "bosch drill saw", CANARY, f"{CANARY}store", f"{CANARY}api", "chef", "acme"):
        for extra in ("", "&user_id=u1", f"&user_id={CANARY}-user-store", "&brand=Bosch", "&category=Tools",
                      "&diversity=0.5", "&facets=false&per_page=100&page=1"):
            paths.append(f"/shops/shop-b/search?q={quote(q)}&per_page=100{extra}")
    for user in ("u1", "u2", "u5", f"{CANARY}-user-store", f"{CANARY}-user-api"):
        paths.append(f"/shops/shop-b/users/{quote(user)}/recommendations?k=100")
        paths.append(f"/shops/shop-b/users/{quote(user)}/recommendations?k=100&diversity=0.8")
    for item in ("tools-0-0", "tools-1-0", "kitchen-0-0", "canary-store-1", "canary-api-1"):
        paths += [f"/shops/shop-b/products/{item}/similar?k=100",
                  f"/shops/shop-b/products/{item}/bought-together?k=100", f"/shops/shop-b/products/{item}"]
    return paths


async def test_canaries_of_one_shop_never_reach_another(tenants: tuple[Path, dict[str, str]]) -> None:
    home, keys = tenants
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        # more canaries through A's API, and rules of A that push them up
        planted = canary_products("api")
        put = await c.put("/shops/shop-a/products", json={"products": planted}, headers=admin)
        posted = await c.post("/shops/shop-a/events", json={"events": canary_events([p["id"] for p in planted],
                                                                                     "api")}, headers=admin)
        pin = await c.post("/shops/shop-a/rules", json={"action": "pin", "products": ["canary-api-1"], "position": 1},
                           headers=admin)
        boost = await c.post("/shops/shop-a/rules", json={"action": "boost", "brand": "Bosch", "amount": 5},
                             headers=admin)
        assert [r.status_code for r in (put, posted, pin, boost)] == [200, 200, 200, 200]
        # the canaries are live in A (so their absence from B means something)
        seen_in_a = await c.get("/shops/shop-a/search", params={"q": "drill", "per_page": 100}, headers=admin)
        assert CANARY in seen_in_a.text
        recs_a = await c.get("/shops/shop-a/users/u5/recommendations", params={"k": 100}, headers=admin)
        assert CANARY in recs_a.text

        checked = 0
        for key_name in ("b-storefront", "b-search", "admin"):
            headers = {"Authorization": f"Bearer {keys[key_name]}"}
            for path in b_reads():
                answer = await c.get(path, headers=headers)
                assert answer.status_code < 500, (path, answer.text)
                assert CANARY not in shown(answer), (key_name, path, answer.text[:500])
                checked += 1
        b_product = await c.get("/shops/shop-b/products/tools-0-0", headers=admin)
        assert b_product.json()["product"]["title"] == "Acme Drill"  # B's own, not A's canary of the same id
        assert checked == 3 * len(b_reads())
    app.state.registry.close()


async def test_keys_of_one_shop_are_refused_on_another(tenants: tuple[Path, dict[str, str]]) -> None:
    home, keys = tenants
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    event = {"events": [{"event_id": "x-1", "user_id": "u1", "item_id": "tools-0-0", "type": "view",
                         "timestamp": time.time() - 5}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        for key_name in ("a-search", "a-storefront"):
            headers = {"Authorization": f"Bearer {keys[key_name]}"}
            for path in b_reads():
                if path == "/shops":
                    listed = await c.get(path, headers=headers)
                    assert [s["name"] for s in listed.json()["shops"]] == ["shop-a"]
                    continue
                answer = await c.get(path, headers=headers)
                assert answer.status_code == 403, (key_name, path, answer.text)
                assert answer.json()["error"]["code"] == "forbidden"
                assert CANARY not in shown(answer)
            posted = await c.post("/shops/shop-b/events", json=event, headers=headers)
            put = await c.put("/shops/shop-b/products", json={"products": [{"id": "x", "title": "X"}]},
                              headers=headers)
            assert (posted.status_code, put.status_code) == (403, 403), key_name
            assert (await c.get("/shops/shop-a/search", params={"q": "drill"}, headers=headers)).status_code == 200
    app.state.registry.close()
