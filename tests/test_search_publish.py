"""Training and publishing search as a library call (``shoprank.search.publish``), and the command that parses
its options into one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shoprank.cli.main import main
from shoprank.search.publish import PublishedSearch, SearchDataError, SearchTraining, train_and_publish
from shoprank.shops import Shop
from tests.test_search_helpers import register_keyword_encoder, tiny_catalogue, tiny_judgments


def keyword_config(training: SearchTraining, language: str) -> Any:
    """The tiny keyword stack of tests/test_search_helpers in place of the profile's encoders (seconds, not
    minutes); the fusion still trains."""
    from shoprank.search.train import profile_config

    base = profile_config(training.profile, language)
    config = replace(base, stack=replace(base.stack, encoder="keyword", lexical_k=20, dense_k=20), biencoder=None,
                     cross=None, fusion_share=0.4, valid_share=0.2)
    config.fusion.min_data_in_leaf = 2
    return config


def test_train_and_publish_publishes_a_bundle_the_engine_loads(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from shoprank.bundles import open_bundle
    from shoprank.search import SearchEngine

    register_keyword_encoder()
    monkeypatch.setattr(SearchTraining, "config", keyword_config)
    shop = Shop("hardware", tmp_path)
    with shop.store() as store:
        store.upsert_products(tiny_catalogue())
        store.upsert_judgments(tiny_judgments())
        catalog_version = store.catalog_version()
    said: list[str] = []
    published = train_and_publish(shop, SearchTraining(profile="quick", holdout=0.25), progress=False,
                                  announce=said.append)
    assert said[0].startswith("training search for shop 'hardware' with the 'quick' profile (48 products")
    assert "25% of queries held out" in said[0] and said[1].startswith("  labels from judgments (")
    params = open_bundle(shop.models_path, "search").params
    assert published.version == open_bundle(shop.models_path, "search").version
    assert (params["profile"], params["holdout"], params["labels"], params["catalog_version"]) == (
        "quick", 0.25, "judgments", catalog_version)
    assert published.summary["timings"] and "ndcg@10" in published.summary["held_out"]  # held-out queries scored
    hits, _ = SearchEngine.load(shop).search("cordless drill", k=3)
    assert hits and all(h.id.startswith("drill-") for h in hits)


def test_a_shop_with_nothing_to_learn_from_is_a_data_error(tmp_path: Path) -> None:
    shop = Shop("empty", tmp_path)
    with shop.store() as store:
        store.upsert_products(tiny_catalogue())
    with pytest.raises(SearchDataError):
        train_and_publish(shop, SearchTraining(profile="quick"), progress=False)
    assert main(["train", "search", "--shop", "empty", "--home", str(tmp_path), "--profile", "quick",
                 "--quiet"]) == 1  # a clear error, no traceback


def test_train_search_parses_its_options_into_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.search import publish

    Shop("s", tmp_path).store().close()
    calls: list[SearchTraining] = []

    def fake_train(shop: Shop, training: SearchTraining, **kwargs: Any) -> PublishedSearch:
        calls.append(training)
        summary = {"queries": {"model": 3}, "timings": {"fusion": 1.0}, "fusion": {}, "held_out": {}}
        return PublishedSearch("v1", summary, "none", "judgments", 1.0)

    monkeypatch.setattr(publish, "train_and_publish", fake_train)
    assert main(["train", "search", "--shop", "s", "--home", str(tmp_path), "--profile", "quick", "--holdout", "0",
                 "--no-cross-encoder", "--fusion-queries", "0", "--labels", "behaviour", "--correction", "em",
                 "--cross-epochs", "2", "--threads", "1", "--doc-tower", "distilled", "--distil-layers", "0,3",
                 "--quiet"]) == 0
    assert calls == [SearchTraining(profile="quick", holdout=0.0, cross_encoder=False, fusion_queries=0,
                                    labels="behaviour", correction="em", cross_epochs=2, threads=1,
                                    doc_tower="distilled", distil_layers=(0, 3))]
    assert "published as version v1" in capsys.readouterr().out
    assert main(["train", "search", "--shop", "s", "--home", str(tmp_path), "--cross-epochs", "0"]) == 1
    assert "--cross-epochs" in capsys.readouterr().err and len(calls) == 1
    with pytest.raises(SystemExit):
        main(["train", "search", "--shop", "s", "--home", str(tmp_path), "--distil-layers", "first,last"])
    assert "comma-separated numbers such as 0,5" in capsys.readouterr().err and len(calls) == 1


def test_the_examined_threshold_reaches_the_behaviour_labels() -> None:
    from shoprank.learning import BehaviourConfig

    assert SearchTraining().behaviour() == BehaviourConfig()  # unset: the labels' own default
    config = SearchTraining(correction="em", examined=0.1).behaviour()
    assert (config.correction, config.examined) == ("em", 0.1)
    with pytest.raises(ValueError, match="examined"):
        SearchTraining(examined=1.5)
