"""Search analytics: known answers from a handful of searches, clicks and purchases on the tiny shop."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.analytics import AnalyticsConfig, summarise
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fake_app(home: Path) -> Any:
    app = create_app(home, loaders=FAKE_LOADERS, config=ServingConfig(watch_seconds=0))
    app.state.registry.load_all()
    return app


def client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {key}"})


async def traffic(c: httpx.AsyncClient) -> None:
    """Three searches for drill (2 results; one clicked first, one clicked second and bought), one for saw,
    two that find nothing."""
    answers = [(await c.get("/shops/tiny/search", params={"q": q, "user_id": f"u{n}"})).json()
               for n, q in enumerate(["drill", "drill", "drill", "saw", "xylophone", "xylophone"])]
    now = time.time()
    first, second = answers[0], answers[1]
    posted = await c.post("/shops/tiny/events", json={"events": [
        {"event_id": "c1", "user_id": "u0", "item_id": first["hits"][0]["id"], "type": "click", "timestamp": now,
         "request_id": first["request_id"]},
        {"event_id": "c2", "user_id": "u1", "item_id": second["hits"][1]["id"], "type": "click", "timestamp": now,
         "request_id": second["request_id"]},
        {"event_id": "c3", "user_id": "u1", "item_id": second["hits"][1]["id"], "type": "purchase",
         "timestamp": now + 1, "request_id": second["request_id"]},
    ]})
    assert posted.status_code == 200, posted.text


async def test_the_analytics_of_known_traffic(tmp_path: Path) -> None:
    tiny_shop(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        await traffic(c)
        assert app.state.impressions.flush()
        report = (await c.get("/shops/tiny/analytics")).json()
        bad = await c.get("/shops/tiny/analytics", params={"since": 10, "until": 5})
        future = (await c.get("/shops/tiny/analytics", params={"since": time.time() + 60})).json()
    app.state.impressions.close()
    app.state.registry.close()
    assert (report["searches"], report["distinct_queries"], report["zero_result_searches"]) == (6, 3, 2)
    assert report["zero_result_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert report["top_queries"][0] == {"query": "drill", "count": 3, "clicks": 2, "ctr": pytest.approx(2 / 3),
                                        "conversion": pytest.approx(1 / 3)}
    assert [q["query"] for q in report["top_queries"]] == ["drill", "xylophone", "saw"]
    assert report["zero_result_queries"] == [{"query": "xylophone", "count": 2}]
    assert {q["query"]: q["results"] for q in report["low_result_queries"]} == {"drill": 2, "saw": 2}
    assert report["ctr_by_position"][:2] == [
        {"position": 0, "impressions": 4, "clicks": 1, "ctr": 0.25},
        {"position": 1, "impressions": 4, "clicks": 1, "ctr": 0.25}]
    search = report["surfaces"]["search"]
    assert (search["impressions"], search["purchase_rate"]) == (6, pytest.approx(1 / 6, abs=1e-6))
    assert report["searches_per_day"][0]["searches"] == 6
    assert report["latency_ms"]["answers"] == 6 and report["latency_ms"]["p50"] > 0
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "until"
    assert future["searches"] == 0 and future["top_queries"] == []


def test_summary_counts_pages_once_and_positions_across_pages() -> None:
    def imp(rid: str, items: tuple[str, ...], page: int = 1, total: int | None = 5) -> Impression:
        start = (page - 1) * len(items)
        return Impression(rid, 0.0, "search", items, tuple(range(start, start + len(items))), query="q",
                          page=page, total=total)

    outcomes = [Outcome(imp("a", ("x", "y"))), Outcome(imp("b", ("z",), page=2), (("click", "z", 1, 1.0),)),
                Outcome(imp("c", (), total=None))]  # an old-style empty answer: zero results all the same
    report = summarise(outcomes, AnalyticsConfig(positions=3))
    assert (report["searches"], report["zero_result_searches"]) == (2, 1)
    assert report["ctr_by_position"] == [{"position": 0, "impressions": 1, "clicks": 0, "ctr": 0.0},
                                         {"position": 1, "impressions": 2, "clicks": 1, "ctr": 0.5}]
    with pytest.raises(ValueError, match="AnalyticsConfig.top"):
        AnalyticsConfig(top=0)


async def test_the_cli_prints_the_same_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.cli.main import main

    tiny_shop(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        await traffic(c)
        assert app.state.impressions.flush()
    app.state.impressions.close()
    app.state.registry.close()
    assert main(["analytics", "--shop", "tiny", "--home", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "searches 6, distinct queries 3, zero-result 2 (33.3%)" in table
    assert any(line.split()[:4] == ["drill", "3", "66.7%", "33.3%"] for line in table.splitlines())
    assert main(["analytics", "--shop", "tiny", "--home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["zero_result_queries"] == [{"query": "xylophone", "count": 2}]
    assert main(["analytics", "--shop", "nope", "--home", str(tmp_path)]) == 1
