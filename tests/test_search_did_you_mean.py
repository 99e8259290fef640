"""'Did you mean' and prefix search: a corrected query is reported (``corrected_query``), and the last word of a
query matches as a prefix when it is not a catalogue word. Known answers on the tiny trained shop (keyword
encoder) and on the fake engines behind the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.shops import Shop
from tests.test_search_helpers import train_tiny_search


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from shoprank.search import SearchEngine
    from tests.test_search_helpers import register_keyword_encoder

    shop = Shop("tiny", tmp_path_factory.mktemp("home"))
    train_tiny_search(shop)
    register_keyword_encoder()
    return SearchEngine.load(shop)


def test_a_misspelt_word_is_corrected_and_said(engine: Any) -> None:
    from shoprank.cascade import Cascade, Request

    page = Cascade(search=engine).run_one(Request("search", "cordles ladder"))
    assert page.corrected_query == "cordless ladder"
    assert page.items[0].id in {f"ladder-{n}" for n in (1, 3, 5)}  # the cordless ladders
    assert Cascade(search=engine).run_one(Request("search", "cordless ladder")).corrected_query is None


def test_the_last_word_matches_as_a_prefix(engine: Any) -> None:
    assert engine.stack.prefix_tokens("cordless fauc") == ["faucet"]
    assert engine.stack.prefix_tokens("ladder") == []  # a finished word stays itself
    assert engine.stack.prefix_tokens("la") == []  # too short to mean anything yet
    items, _ = engine.search("fauc", k=6)
    assert {i.id for i in items} == {f"faucet-{n}" for n in range(6)}
    assert all(i.parts["bm25"] > 0 for i in items)  # found by the words, not only by meaning


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_api_answers_corrected_query_and_prefix_matches(tmp_path: Path) -> None:
    from shoprank.keys import KeyStore
    from shoprank.serving import ServingConfig, create_app
    from tests.support.fakes import FAKE_LOADERS, tiny_shop

    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {key}"}) as c:
        typo = (await c.get("/shops/tiny/search", params={"q": "sprinkel"})).json()
        prefix = (await c.get("/shops/tiny/search", params={"q": "puzz"})).json()
        plain = (await c.get("/shops/tiny/search", params={"q": "drill"})).json()
    app.state.registry.close()
    assert typo["corrected_query"] == "sprinkler" and typo["hits"][0]["title"].endswith("Sprinkler")
    assert prefix["corrected_query"] is None and prefix["total"] >= 8
    assert all("Puzzle" in h["title"] for h in prefix["hits"])
    assert plain["corrected_query"] is None
