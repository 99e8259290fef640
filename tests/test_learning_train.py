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
