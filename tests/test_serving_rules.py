"""Business rules and re-ranking over HTTP: edited by the API, in force on the next answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.keys import KeyStore
from shoprank.rerank import DEFAULT_DIVERSITY, Rule, RuleSet, save_rules
from shoprank.serving import create_app
from shoprank.serving.config import ServingConfig
from shoprank.shops import Shop
from tests.support.fakes import FAKE_LOADERS, tiny_shop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(tmp_path: Path) -> Any:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                               headers={"Authorization": f"Bearer {key}"})
    yield app, client, tmp_path
    app.state.registry.close()


async def _ids(client: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [item["id"] for item in body.get("hits", body.get("items", []))]


async def test_a_pinned_product_leads_the_next_search(served: Any) -> None:
    _, client, _ = served
    async with client:
        before = await _ids(client, "/shops/tiny/search", q="puzzle", diversity=0)
        last = before[-1]
        added = await client.post("/shops/tiny/rules", json={"action": "pin", "query": "puzzle",
                                                              "products": [last], "position": 1})
        assert added.status_code == 200, added.text
        rule = added.json()["rules"]["rules"][0]
        answer = (await client.get("/shops/tiny/search", params={"q": "puzzle", "diversity": 0})).json()
        assert answer["hits"][0]["id"] == last
        assert f"pinned by rule {rule['id']}" in answer["hits"][0]["reasons"]
        other = await _ids(client, "/shops/tiny/search", q="acme", diversity=0)
        assert last not in other[:1]  # the pin holds for its query only
        removed = await client.delete(f"/shops/tiny/rules/{rule['id']}")
        assert removed.status_code == 200 and removed.json()["rules"]["rules"] == []
        assert await _ids(client, "/shops/tiny/search", q="puzzle", diversity=0) == before
        again = await client.delete(f"/shops/tiny/rules/{rule['id']}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "rule_not_found"


async def test_hide_rules_and_the_out_of_stock_default(served: Any) -> None:
    _, client, home = served
    with Shop("tiny", home).store(create=False) as store:
        puzzles = [p for p in store.iter_products() if "Puzzle" in p.title]
    async with client:
        shown = (await client.get("/shops/tiny/search", params={"q": "puzzle", "per_page": 100})).json()
        assert shown["total"] == sum(p.in_stock for p in puzzles) < len(puzzles)  # hidden by default
        hidden = next(p.id for p in puzzles if p.in_stock)
        put = await client.put("/shops/tiny/rules", json={"hide_out_of_stock": False, "rules": [
            {"id": 3, "action": "hide", "products": [hidden]}]})
        assert put.status_code == 200, put.text
        body = (await client.get("/shops/tiny/search", params={"q": "puzzle", "per_page": 100})).json()
        assert sorted(h["id"] for h in body["hits"]) == sorted(p.id for p in puzzles if p.id != hidden)
        assert body["total"] == len(body["hits"])
        assert {h["in_stock"] for h in body["hits"]} == {True, False}


async def test_bad_rules_are_refused_whole_and_name_the_field(served: Any) -> None:
    _, client, _ = served
    async with client:
        ok = await client.put("/shops/tiny/rules", json={"rules": [{"id": 1, "action": "bury", "brand": "Acme",
                                                                    "amount": 0.2}]})
        assert ok.status_code == 200
        for body, field in [
            ({"rules": [{"id": 2, "action": "explode"}]}, "action"),
            ({"rules": [{"id": 2, "action": "pin", "products": ["x"], "colour": "red"}]}, "colour"),
            ({"rules": [{"id": 2, "action": "pin", "products": "x"}]}, "products"),
            ({"hide_out_of_stock": "yes"}, "hide_out_of_stock"),
        ]:
            answer = await client.put("/shops/tiny/rules", json=body)
            assert answer.status_code == 422, (body, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "invalid_rule" and error["field"] == field, error
        bad_setting = await client.put("/shops/tiny/settings/rerank", json={"diversity": 3})
        assert bad_setting.status_code == 422 and "diversity" in bad_setting.json()["error"]["message"]
        unknown = await client.put("/shops/tiny/settings/rerank", json={"lambda": 0.3})
        assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "lambda"
        kept = (await client.get("/shops/tiny/rules")).json()
        assert [r["id"] for r in kept["rules"]["rules"]] == [1] and kept["settings"]["diversity"] == DEFAULT_DIVERSITY


async def test_diversity_setting_and_per_request_override(served: Any) -> None:
    _, client, _ = served
    async with client:
        plain = (await client.get("/shops/tiny/users/u0/recommendations", params={"k": 4, "diversity": 0})).json()
        varied = (await client.get("/shops/tiny/users/u0/recommendations", params={"k": 4, "diversity": 1})).json()
        assert {i["id"].split("-")[0] for i in plain["items"]} == {"tools"}
        assert len({i["id"].split("-")[0] for i in varied["items"]}) > 1
        assert any("added for variety" in i["reasons"] for i in varied["items"])
        saved = await client.put("/shops/tiny/settings/rerank", json={"diversity": 1})
        assert saved.status_code == 200 and saved.json()["settings"]["diversity"] == 1
        default = (await client.get("/shops/tiny/users/u0/recommendations", params={"k": 4})).json()
        assert [i["id"] for i in default["items"]] == [i["id"] for i in varied["items"]]


async def test_rules_written_by_another_process_apply_after_the_watch_tick(served: Any) -> None:
    app, client, home = served
    async with client:
        first = (await _ids(client, "/shops/tiny/search", q="puzzle", diversity=0))[0]
        with Shop("tiny", home).store(create=False) as store:
            save_rules(store, RuleSet((Rule(id=5, action="hide", products=(first,)),)))
        app.state.registry.check_for_updates()
        assert first not in await _ids(client, "/shops/tiny/search", q="puzzle", diversity=0)
