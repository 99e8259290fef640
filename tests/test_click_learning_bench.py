"""bench.click_learning's HTTP loop on a tiny shop: a real server, shoppers searching and clicking over HTTP with
the answers' request ids, each arm trained from its store's impressions and events, published and served."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shoprank.data.records import Judgment
from shoprank.shops import Shop
from tests.test_search_helpers import KEYWORDS, tiny_catalogue

EXTRAS = ["cordless", "model", "buy", "best", "cheap", "new", "pro", "mini", "big", "small", "red", "blue"]


def judgments() -> list[Judgment]:
    """'<extra> <word>': the word's products 3-5 are relevant (grade 3), 0-2 are not (grade 1)."""
    return [Judgment(f"{extra} {word}", f"{word}-{n}", 3.0 if n >= 3 else 1.0)
            for word in KEYWORDS for extra in EXTRAS for n in range(6)]


def test_the_bench_loop_runs_over_a_real_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.click_learning import ARMS, TRUTH, ClickBench, Plan, arm_shop, make_shops, tables, world_from_store
    from bench.click_server import ShopServer
    from shoprank.bundles import latest_version
    from shoprank.learning import load_click_log
    from shoprank.search.publish import SearchTraining

    def tiny_config(self: SearchTraining, language: str) -> object:
        """BM25 and LambdaMART only (no text encoder to load, in here or in the server), leaves for a tiny shop."""
        config = real_config(self, language)
        config.fusion.min_data_in_leaf = 2
        return replace(config, stack=replace(config.stack, encoder="none"), fusion_share=0.5, valid_share=0.2)

    real_config = SearchTraining.config
    monkeypatch.setattr(SearchTraining, "config", tiny_config)
    home = tmp_path / "home"
    truth = Shop(TRUTH, home)
    with truth.store() as store:
        store.upsert_products(tiny_catalogue())
        store.upsert_judgments(judgments())
        world = world_from_store(store)
    assert world.train_queries and world.test_queries
    assert not set(world.train_queries) & set(world.test_queries)
    plan = Plan(rounds=1, randomise=0.5)
    make_shops(home, plan, truth, None, None)  # the lexical baseline (no vectors)
    with ShopServer(home, ready_timeout=120) as server:
        bench = ClickBench(home, world, plan, server, say=lambda s: None)
        saved = []
        results = bench.run(saved.append)
    rows = results["variants"]["default"]["rounds"]
    assert [row["round"] for row in rows] == [0, 1] and saved
    assert rows[0]["baseline"]["served_by"].startswith("baseline-")
    assert results["randomisation"]["rate"] == 0.5
    for arm in ARMS:
        shop = Shop(arm_shop("default", arm), home)
        traffic = bench.traffic[f"{shop.name} round 1"]
        assert traffic["searches"] == 2 * len(world.train_queries) and traffic["impressions_dropped"] == 0
        events = traffic["events"]
        assert events["stored"] > 0 and events["attributed"] == events["stored"] and events["unattributed"] == 0
        assert all(v.startswith("baseline-") for v in traffic["served_by"])
        with shop.store(create=False) as store:
            log = load_click_log(store)
        trained = [s for s in log.lists if s.query in set(world.train_queries)]
        assert len(trained) == traffic["searches"] and all(s.complete for s in trained)  # every answer logged
        assert log.clicks() == sum(sum(s.clicked) for s in trained) > 0  # clicks only on the shoppers' answers
        training = bench.training[f"{shop.name} round 1"]
        assert training["labels"].startswith("the behaviour log")
        assert training["behaviour"]["log"]["lists"] == traffic["searches"]
        version = latest_version(shop.models_path, "search")
        assert rows[1][arm]["served_by"] == version == training["version"] and not version.startswith("baseline-")
        # the known answer: shoppers click products 3-5 of the word, the trained order puts them first
        assert rows[1][arm]["ndcg@10"] > rows[0]["baseline"]["ndcg@10"] + 0.2, rows
    assert "naive clicks" in tables(results, len(world.test_queries))
