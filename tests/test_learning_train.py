"""`train search` from behaviour alone: a tiny shop without judgments learns to rank the clicked products first."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from shoprank.data.records import Event
from shoprank.shops import Shop
from tests.test_search_helpers import KEYWORDS, KeywordEncoder, register_keyword_encoder, tiny_catalogue

EXTRAS = ["cordless", "model", "buy", "best", "cheap", "new", "pro", "mini"]


def click_events() -> list[Event]:
    """Two sessions per query '<extra> <word>'; shoppers skip the first places and click the 'bolt' products
    (n = 3, 4, 5) shown at places 3 to 5; one of them buys."""
    now = time.time() - 3600
    events = []
    for word in KEYWORDS:
        for extra in EXTRAS:
            for session in range(2):
                sid = f"{word}-{extra}-{session}"
                for place, n in enumerate((3, 4, 5), start=3):
                    kind = "purchase" if n == 4 and session else "click"
                    events.append(Event(f"{sid}-{n}", f"u-{sid}", f"{word}-{n}", kind, now + len(events),
                                        query=f"{extra} {word}", position=place, session_id=sid))
    return events


def test_behaviour_only_shop_trains_and_ranks_the_clicked_products_first(tmp_path: Path) -> None:
    from shoprank.bundles import publish
    from shoprank.search import SearchEngine
    from shoprank.search.data import load_search_data
    from shoprank.search.train import profile_config, train_search

    register_keyword_encoder()
    shop = Shop("clicks", tmp_path)
    with shop.store() as store:
        store.upsert_products(tiny_catalogue())
        store.append_events(click_events())
        with pytest.raises(ValueError, match="no judgments"):
            load_search_data(store, labels="judgments")
        data = load_search_data(store, test_share=0.2)
        version = store.catalog_version()
    assert data.labels == "behaviour" and not data.test and data.test_queries
    assert data.behaviour["labels"]["queries"] > 0
    assert all(data.stats.popularity[f"{w}-{n}"] > 0 for w in KEYWORDS for n in (3, 4, 5))
    config = profile_config("quick")
    config = replace(config, stack=replace(config.stack, encoder="keyword", lexical_k=20, dense_k=20),
                     biencoder=None, cross=None, fusion_share=0.4, valid_share=0.2)
    config.fusion.min_data_in_leaf = 2
    stack, summary = train_search(data, config, progress=False, report=lambda s: None, encoder=KeywordEncoder(),
                                  held_out=True)
    assert summary["labels"] == "behaviour" and "fast" in stack.fusion
    snips = summary["held_out"]["snips"]
    assert snips["lists"] > 0 and snips["snips"] > 0  # the held-out clicked products are still on the list
    with publish(shop.models_path, "search", {"catalog_version": version, "holdout": 0.2, "labels": "behaviour"}
                 ) as folder:
        stack.save(folder)
    engine = SearchEngine.load(shop)
    for query in ("cheap drill", "pro ladder", "mini faucet"):
        word = query.split()[1]
        top = [item.id for item in engine.search(query, k=3)[0]]
        assert set(top) == {f"{word}-3", f"{word}-4", f"{word}-5"}, (query, top)


@pytest.mark.anyio
async def test_served_answers_and_clicks_posted_over_http_become_the_click_log(home: Path) -> None:
    """Search through the HTTP app, click with the answer's request id: the store's click log has the whole
    shown list (skips included) with the click at its position, and behaviour labels follow from it."""
    from shoprank.keys import KeyStore
    from shoprank.learning import BehaviourConfig, Propensities, behaviour_gains, load_click_log
    from tests.test_baseline import client, fresh_shop, make_app

    shop = fresh_shop(home, events=False)
    key, _ = KeyStore(home).create("admin")
    app = make_app(home)
    async with client(app, key) as c:
        answer = (await c.get("/shops/fresh/search", params={"q": "drill", "per_page": 3})).json()
        shown = [hit["id"] for hit in answer["hits"]]
        posted = await c.post("/shops/fresh/events", json={"events": [
            {"event_id": "k1", "user_id": "s1", "item_id": shown[-1], "type": "click", "timestamp": time.time(),
             "request_id": answer["request_id"]}]})
        assert posted.status_code == 200 and app.state.impressions.flush()
    with shop.store(create=False) as store:
        log = load_click_log(store)
    (served,) = log.lists
    assert served.key == answer["request_id"] and served.query == "drill" and served.complete
    assert list(served.items) == shown and served.positions == tuple(range(len(shown)))
    assert served.outcomes == (None,) * (len(shown) - 1) + ("click",)
    gains = behaviour_gains(log, Propensities.uniform(3), BehaviourConfig())["drill"]
    n = len(shown)  # prior Beta(2/n, 2 - 2/n): one click in n examinations; posteriors add the click or the skip
    assert gains == {**dict.fromkeys(shown[:-1], pytest.approx(0.6 * (2 / n) / 3, abs=2e-3)),
                     shown[-1]: pytest.approx(0.6 * (2 / n + 1) / 3, abs=2e-3)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
