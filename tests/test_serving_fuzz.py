"""Property-based fuzzing of the API (hypothesis): whatever a client sends, never a 5xx, always the error shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(codec="utf-8"), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {}, optional={"event_id": json_values | text, "user_id": json_values | text, "item_id": st.sampled_from(
        ["tools-0-0", "nope", ""]) | json_values, "type": st.sampled_from(["view", "click", "purchase", "x"]) | text,
        "timestamp": st.floats(allow_nan=False) | st.integers() | text, "position": json_values,
        "value": json_values, "query": json_values},
)


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home: Path = tmp_path_factory.mktemp("fuzz")
    tiny_shop(home, "tiny")
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    with httpx.Client(transport=_SyncASGI(app), base_url="http://test",
                      headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
    app.state.registry.close()


class _SyncASGI(httpx.BaseTransport):
    """Drive the ASGI app from sync hypothesis tests: one event loop in a helper thread."""

    def __init__(self, app: Any) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        async def go() -> httpx.Response:
            request.stream = httpx.ByteStream(request.read())
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)


def check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@SETTINGS
@given(q=text, page=st.integers(-5, 2000) | text, per_page=st.integers(-5, 500) | text, user=text,
       brand=text, price=st.floats() | text, stock=text)
def test_search_never_fails(app_and_key: httpx.Client, q: str, page: Any, per_page: Any, user: str, brand: str,
                            price: Any, stock: str) -> None:
    params = {"q": q, "page": str(page), "per_page": str(per_page), "user_id": user, "brand": brand,
              "price_min": str(price), "in_stock": stock}
    check(app_and_key.get("/shops/tiny/search", params=params))


@SETTINGS
@given(user=text, k=st.integers(-5, 500) | text, item=text)
def test_recommendations_never_fail(app_and_key: httpx.Client, user: str, k: Any, item: str) -> None:
    user_path, item_path = (quote(v.encode("utf-8", "surrogatepass"), safe="") or "x" for v in (user, item))
    check(app_and_key.get(f"/shops/tiny/users/{user_path}/recommendations", params={"k": str(k)}))
    check(app_and_key.get(f"/shops/tiny/products/{item_path}/similar"))


@SETTINGS
@given(body=st.lists(event_like, max_size=5).map(lambda events: {"events": events}) | json_values)
def test_event_batches_never_fail(app_and_key: httpx.Client, body: Any) -> None:
    answer = app_and_key.post("/shops/tiny/events", content=json.dumps(body),
                              headers={"Content-Type": "application/json"})
    check(answer)


@SETTINGS
@given(body=st.fixed_dictionaries({}, optional={"products": st.lists(st.dictionaries(
    st.sampled_from(["id", "title", "price", "category", "in_stock", "attributes", "created_at", "extra"]),
    json_values, max_size=6), max_size=4) | json_values, "delete": st.lists(json_values, max_size=3) | json_values}))
def test_product_writes_never_fail(app_and_key: httpx.Client, body: Any) -> None:
    check(app_and_key.put("/shops/tiny/products", content=json.dumps(body),
                          headers={"Content-Type": "application/json"}))
