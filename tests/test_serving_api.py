"""The HTTP contract, in-process (httpx ASGITransport) against fake engines on a tiny shop."""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, FakeSearchEngine, tiny_shop


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(home: Path, **config: Any) -> Any:
    app = create_app(home, config=ServingConfig(watch_seconds=0, **config), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    return app


@pytest.fixture
def served(tmp_path: Path) -> tuple[Any, str]:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = make_app(tmp_path)
    yield app, key
    app.state.registry.close()


def client(app: Any, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)


def event(i: int | str, user: str, item: str, type_: str = "purchase", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"t-{i}", "user_id": user, "item_id": item, "type": type_, "timestamp": time.time() - 5,
            **extra}


@pytest.mark.anyio
async def test_health_and_error_shape(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app) as c:
        health = await c.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ready"
        missing = await c.get("/nope")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "field"}


@pytest.mark.anyio
async def test_health_not_ready_before_models_load(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "tiny")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    key, _ = KeyStore(tmp_path).create("admin")
    async with client(app, key) as c:
        answer = await c.get("/health")
        search = await c.get("/shops/tiny/search", params={"q": "drill"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert search.status_code == 503 and search.headers["Retry-After"] == "5"


@pytest.mark.anyio
async def test_search_contract(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        answer = await c.get("/shops/tiny/search", params={"q": "puzzle", "per_page": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the shop's default rule hides the 2 puzzles out of stock
    assert body["total"] == 8 and len(body["hits"]) == 3
    for hit in body["hits"]:
        assert {"id", "title", "score", "reasons", "parts"} <= set(hit)
        assert "Puzzle" in hit["title"] and hit["reasons"] and "lexical" in hit["parts"]
    facets = body["facets"]
    assert facets["category"] == [{"value": "Toys", "count": 8}]
    assert sum(f["count"] for f in facets["brand"]) == 8
    assert sum(f["count"] for f in facets["price"]) == 8
    assert facets["in_stock"] == [{"value": True, "count": 8}]
    assert "engine;dur=" in answer.headers["Server-Timing"]


@pytest.mark.anyio
async def test_search_pages_do_not_overlap(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        pages = [(await c.get("/shops/tiny/search", params={"q": "puzzle", "per_page": 4, "page": p})).json()
                 for p in (1, 2, 3, 4)]
    ids = [h["id"] for page in pages for h in page["hits"]]
    assert len(ids) == 8 and len(set(ids)) == 8 and pages[2]["hits"] == []  # 2 out of stock are hidden


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"brand": "acme"}, lambda h: h["brand"] == "Acme"),
        ({"category": "Power Tools"}, lambda h: h["category"] == "Tools > Power Tools"),
        ({"price_min": 100, "price_max": 110}, lambda h: 100 <= h["price"] <= 110),
        ({"in_stock": "false"}, lambda h: h["in_stock"] is False),
    ],
)
@pytest.mark.anyio
async def test_search_filters(served: tuple[Any, str], params: dict[str, Any], check: Any) -> None:
    app, key = served
    async with client(app, key) as c:
        body = (await c.get("/shops/tiny/search", params={"q": "", "per_page": 100, **params})).json()
    assert body["hits"] and all(check(h) for h in body["hits"])
    assert body["total"] == len(body["hits"])


@pytest.mark.anyio
async def test_search_personalised_by_user(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        body = (await c.get("/shops/tiny/search", params={"q": "acme", "user_id": "u1"})).json()
    assert body["hits"][0]["id"].startswith("kitchen")  # u1 bought kitchen things
    assert any("you like Kitchen" in r for r in body["hits"][0]["reasons"])


@pytest.mark.parametrize(
    "q",
    ["", "x" * 10_000, "\u62d6\u628a\u96fb\u947d", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
     "\u05de\u05e7\u05d3\u05d7\u05d4", "drill\x00saw", "'; DROP TABLE products; --", "../../etc/passwd", "a\r\nb"],
)
@pytest.mark.anyio
async def test_odd_queries_never_fail(served: tuple[Any, str], q: str) -> None:
    app, key = served
    async with client(app, key) as c:
        answer = await c.get("/shops/tiny/search", params={"q": q})
    assert answer.status_code == 200, answer.text
    assert answer.json()["query_truncated"] is (len(q) > 1000)


@pytest.mark.anyio
async def test_nfc_and_nfd_give_the_same_results(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        await c.put("/shops/tiny/products", json={"products": [{"id": "cafe", "title": "Caf\u00e9 Grinder"}]})
        nfc = (await c.get("/shops/tiny/search", params={"q": "caf\u00e9"})).json()
        nfd = (await c.get("/shops/tiny/search", params={"q": unicodedata.normalize("NFD", "caf\u00e9")})).json()
    assert nfc["hits"] == nfd["hits"] and nfc["hits"][0]["id"] == "cafe"


@pytest.mark.anyio
async def test_recommendations_similar_bought_together(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        recs = await c.get("/shops/tiny/users/u0/recommendations", params={"k": 4, "diversity": 0})
        similar = await c.get("/shops/tiny/products/kitchen-0-0/similar", params={"k": 3})
        together = await c.get("/shops/tiny/products/tools-0-0/bought-together", params={"k": 3})
        unknown = await c.get("/shops/tiny/products/nope/similar")
        product = await c.get("/shops/tiny/products/tools-0-0")
    assert recs.status_code == 200 and len(recs.json()["items"]) == 4
    assert all(i["id"].startswith("tools") for i in recs.json()["items"])  # u0 bought tools
    assert "tools-3-1" not in {i["id"] for i in recs.json()["items"]}  # out of stock: hidden by default
    for item in recs.json()["items"] + similar.json()["items"]:
        assert {"id", "title", "score", "reasons"} <= set(item)
    assert similar.json()["items"][0]["id"] == "kitchen-0-1"
    assert {i["id"] for i in together.json()["items"]} <= {"tools-1-0", "tools-2-0", "tools-3-0"}
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "product_not_found"
    assert product.json()["product"]["title"] == "Acme Drill"


@pytest.mark.anyio
async def test_posted_events_change_next_recommendations(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        before = (await c.get("/shops/tiny/users/u0/recommendations", params={"k": 5})).json()["items"]
        events = [event(f"rt-{i}", "u0", f"garden-{i}-0") for i in range(4)]
        posted = await c.post("/shops/tiny/events", json={"events": events})
        after = (await c.get("/shops/tiny/users/u0/recommendations", params={"k": 5})).json()["items"]
    assert posted.status_code == 200 and posted.json() == {"stored": 4, "duplicates": 0}
    assert sum(i["id"].startswith("garden") for i in before) == 0
    assert sum(i["id"].startswith("garden") for i in after) >= 4


@pytest.mark.anyio
async def test_events_are_idempotent(served: tuple[Any, str]) -> None:
    app, key = served
    batch = {"events": [event("idem-1", "u9", "tools-1-1"), event("idem-2", "u9", "tools-1-0", "click")]}
    async with client(app, key) as c:
        first = await c.post("/shops/tiny/events", json=batch)
        again = await c.post("/shops/tiny/events", json=batch)
    assert first.json() == {"stored": 2, "duplicates": 0}
    assert again.json() == {"stored": 0, "duplicates": 2}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "teleport"}, "events[3].type"),
        ({"timestamp": 0}, "events[3].timestamp"),
        ({"timestamp": time.time() + 10 * 86400}, "events[3].timestamp"),
        ({"value": "NaN"}, "events[3].value"),
        ({"position": -1}, "events[3].position"),
        ({"user_id": "u" * 10_000}, "events[3].user_id"),
        ({"item_id": "not-in-the-catalogue"}, "events[3].item_id"),
    ],
)
@pytest.mark.anyio
async def test_a_bad_event_refuses_the_batch(served: tuple[Any, str], bad: dict[str, Any], field: str) -> None:
    app, key = served
    events = [event(f"b-{i}", "u7", "tools-1-1") for i in range(5)]
    events[3].update(bad)
    async with client(app, key) as c:
        answer = await c.post("/shops/tiny/events", content=json.dumps({"events": events}),
                              headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_record" and error["field"] == field
    store = app.state.registry.get("tiny").store
    assert store.user_events("u7") == []


@pytest.mark.anyio
async def test_products_upsert_and_delete_are_searchable_at_once(served: tuple[Any, str]) -> None:
    app, key = served
    new = {"id": "zz-1", "title": "Quantum Wrench", "category": "Tools > Hand Tools", "brand": "Acme", "price": 12}
    async with client(app, key) as c:
        put = await c.put("/shops/tiny/products", json={"products": [new]})
        found = (await c.get("/shops/tiny/search", params={"q": "quantum"})).json()
        await c.put("/shops/tiny/products", json={"products": [{**new, "title": "Quantum Spanner"}]})
        renamed = (await c.get("/shops/tiny/search", params={"q": "spanner"})).json()
        gone = await c.put("/shops/tiny/products", json={"delete": ["zz-1"]})
        after = (await c.get("/shops/tiny/search", params={"q": "quantum"})).json()
        missing = await c.delete("/shops/tiny/products/zz-1")
        deleted = await c.delete("/shops/tiny/products/tools-0-0")
        similar = (await c.get("/shops/tiny/products/tools-0-1/similar", params={"k": 50})).json()
    assert put.status_code == 200 and put.json()["stored"] == 1
    assert [h["id"] for h in found["hits"]] == ["zz-1"]
    assert renamed["hits"][0]["title"] == "Quantum Spanner"
    assert gone.json()["deleted"] == 1 and after["hits"] == []
    assert missing.status_code == 404 and deleted.status_code == 200
    assert "tools-0-0" not in {i["id"] for i in similar["items"]}  # deleted ids never come back


@pytest.mark.anyio
async def test_bad_product_refuses_the_batch(served: tuple[Any, str]) -> None:
    app, key = served
    products = [{"id": "ok-1", "title": "Fine"}, {"id": "bad", "title": "Bad", "price": -3}]
    async with client(app, key) as c:
        answer = await c.put("/shops/tiny/products", json={"products": products})
        fine = (await c.get("/shops/tiny/search", params={"q": "fine"})).json()
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "products[1].price"
    assert fine["hits"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"events": [{"value": NaN}]}', 422, "invalid_record"),  # named by field, as ingest does
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b'{"events": 5}', 400, "invalid_body"),
        (b'["events"]', 400, "invalid_body"),
        (b'{"events": [1]}', 422, "invalid_record"),
    ],
)
@pytest.mark.anyio
async def test_malformed_bodies(served: tuple[Any, str], body: bytes, status: int, code: str) -> None:
    app, key = served
    async with client(app, key) as c:
        answer = await c.post("/shops/tiny/events", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status and answer.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_size_limits(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = make_app(tmp_path, max_body_bytes=2_000, max_batch=3)
    events = {"events": [event(i, "u1", "tools-1-1") for i in range(4)]}

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    async with client(app, key) as c:
        big = await c.post("/shops/tiny/events", content=b" " * 5_000, headers={"Content-Type": "application/json"})
        streamed = await c.post("/shops/tiny/events", content=chunks(), headers={"Content-Type": "application/json"})
        many = await c.post("/shops/tiny/events", json=events)
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
    assert streamed.status_code == 413
    assert many.status_code == 413 and many.json()["error"]["code"] == "batch_too_large"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/shops/nope/search?q=a", 404, "shop"),
        ("/shops/..%2Fetc/search?q=a", 404, None),
        ("/shops/..etc/search?q=a", 400, "shop"),
        ("/shops/Bad%20Name/search?q=a", 400, "shop"),
        ("/shops/tiny/search?per_page=0", 422, "per_page"),
        ("/shops/tiny/search?page=abc", 422, "page"),
        ("/shops/tiny/search?price_min=nan", 422, "price_min"),
        ("/shops/tiny/search?price_min=-1", 422, "price_min"),
        ("/shops/tiny/users/u1/recommendations?k=100000", 422, "k"),
        ("/shops/tiny/users/a%0D%0Ab/recommendations", 422, "user_id"),
    ],
)
@pytest.mark.anyio
async def test_bad_parameters(served: tuple[Any, str], path: str, status: int, field: str | None) -> None:
    app, key = served
    async with client(app, key) as c:
        answer = await c.get(path)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.anyio
async def test_shop_missing_an_engine_answers_409(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "searchonly", recommend=False)
    tiny_shop(tmp_path, "recsonly", search=False)
    key, _ = KeyStore(tmp_path).create("admin")
    app = make_app(tmp_path)
    async with client(app, key) as c:
        recs = await c.get("/shops/searchonly/users/u1/recommendations")
        similar = await c.get("/shops/searchonly/products/tools-0-0/similar")
        search = await c.get("/shops/recsonly/search", params={"q": "drill"})
        ok = await c.get("/shops/searchonly/search", params={"q": "drill"})
        shops = (await c.get("/shops")).json()["shops"]
    assert recs.status_code == 409 and recs.json()["error"]["code"] == "no_recommend_model"
    assert similar.status_code == 409
    assert search.status_code == 409 and search.json()["error"]["code"] == "no_search_model"
    assert "shoprank train" in search.json()["error"]["message"]
    assert ok.status_code == 200
    assert {s["name"]: s["models"]["search"]["state"] for s in shops} == {"recsonly": "missing", "searchonly": "ready"}


@pytest.mark.anyio
async def test_no_data_crosses_shops(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "one")
    tiny_shop(tmp_path, "two")
    key, _ = KeyStore(tmp_path).create("admin")
    app = make_app(tmp_path)
    canary = {"id": "canary-1", "title": "Canary Teapot", "category": "Kitchen > Tea"}
    async with client(app, key) as c:
        await c.put("/shops/one/products", json={"products": [canary]})
        one = (await c.get("/shops/one/search", params={"q": "canary teapot"})).json()
        two = (await c.get("/shops/two/search", params={"q": "canary teapot"})).json()
        recs = (await c.get("/shops/two/users/u1/recommendations", params={"k": 100})).json()
        detail = await c.get("/shops/two/products/canary-1")
    assert one["hits"][0]["id"] == "canary-1"
    assert two["hits"] == [] and "canary-1" not in {i["id"] for i in recs["items"]}
    assert detail.status_code == 404


class SlowSearch(FakeSearchEngine):
    gate = threading.Event()

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.gate.wait(5)
        return super().search(*args, **kwargs)


def slow_search_app(home: Path, **config: Any) -> tuple[Any, str]:
    """An app on a tiny shop whose searches wait for ``SlowSearch.gate`` (cleared here), and an admin key."""
    tiny_shop(home, "tiny")
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0, **config),
                     loaders={**FAKE_LOADERS, "search": SlowSearch.load})
    app.state.registry.load_all()
    SlowSearch.gate.clear()
    return app, key


@pytest.mark.anyio
async def test_overload_answers_503_with_retry_after(tmp_path: Path) -> None:
    import anyio

    app, key = slow_search_app(tmp_path, max_in_flight=1)
    answers: list[httpx.Response] = []
    async with client(app, key) as c:

        async def slow() -> None:
            answers.append(await c.get("/shops/tiny/search", params={"q": "drill"}))

        async with anyio.create_task_group() as group:
            group.start_soon(slow)
            await anyio.sleep(0.2)
            rejected = await c.get("/shops/tiny/search", params={"q": "saw"})
            health = await c.get("/health")
            SlowSearch.gate.set()
    assert rejected.status_code == 503 and rejected.headers["Retry-After"] == "1"
    assert rejected.json()["error"]["code"] == "overloaded"
    assert health.status_code == 200 and answers[0].status_code == 200


@pytest.mark.anyio
async def test_a_call_that_cannot_reach_an_engine_in_time_is_refused(tmp_path: Path) -> None:
    import anyio

    app, key = slow_search_app(tmp_path, engine_concurrency=1, engine_queue_ms=50)
    answers: list[httpx.Response] = []
    async with client(app, key) as c:

        async def slow() -> None:
            answers.append(await c.get("/shops/tiny/search", params={"q": "drill"}))

        async with anyio.create_task_group() as group:
            group.start_soon(slow)
            await anyio.sleep(0.2)  # the slow search holds the only engine slot
            started = time.perf_counter()
            refused = await c.get("/shops/tiny/search", params={"q": "saw"})
            waited = time.perf_counter() - started
            SlowSearch.gate.set()
        after = await c.get("/shops/tiny/search", params={"q": "saw"})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "overloaded" and 0.04 <= waited < 2.0
    assert answers[0].status_code == 200 and after.status_code == 200  # the slot was given back both times


@pytest.mark.anyio
async def test_metrics(served: tuple[Any, str]) -> None:
    app, key = served
    async with client(app, key) as c:
        await c.get("/shops/tiny/search", params={"q": "drill"})
        text = (await c.get("/metrics")).text
    assert 'shoprank_requests_total{endpoint="/shops/{shop}/search",method="GET",status="200"} 1' in text
    assert 'shoprank_request_duration_seconds_bucket{endpoint="/shops/{shop}/search",le="+Inf"} 1' in text
    assert 'shoprank_model_info{shop="tiny",kind="search"' in text


@pytest.mark.anyio
async def test_openapi_and_docs(served: tuple[Any, str]) -> None:
    app, _ = served
    async with client(app) as c:
        schema = (await c.get("/openapi.json")).json()
        docs = await c.get("/docs")
        page = await c.get("/")
    assert "/shops/{shop}/search" in schema["paths"] and "/shops/{shop}/events" in schema["paths"]
    assert docs.status_code == 200 and page.status_code == 200


@pytest.mark.anyio
async def test_docs_work_offline_from_packaged_assets(served: tuple[Any, str]) -> None:
    import re

    app, _ = served
    async with client(app) as c:
        docs = (await c.get("/docs")).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs)
        fetched = {a: await c.get(a) for a in assets if a.startswith("/docs-assets/")}
    assert "http://" not in docs and "https://" not in docs  # no CDN: nothing outside this server
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= set(assets)
    assert all(r.status_code == 200 and r.content for r in fetched.values())
    assert len(fetched["/docs-assets/swagger-ui-bundle.js"].content) > 100_000  # the real Swagger UI


def test_public_surface() -> None:
    import shoprank.serving as serving

    assert sorted(serving.__all__) == ["ServingConfig", "build_server", "create_app", "demo_key", "demo_serve",
                                       "example_requests", "run"]
    with pytest.raises(ValueError, match="max_in_flight"):
        ServingConfig(max_in_flight=0)
