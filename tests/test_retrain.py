"""Keep learning: a candidate is published only when it is not worse on the most recent held-out traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprank.bundles import latest_version, open_bundle
from shoprank.data.records import Event, Product
from shoprank.retrain import RetrainConfig, parse_duration, retrain_once
from shoprank.retrain.holdout import recent_cutoff, recommend_holdout
from shoprank.shops import Shop

T0 = 1_700_000_000.0
TOPICS = ("drill", "hose", "paint", "saw", "lamp")


def topic_shop(home: Path, users: int = 60, steps: int = 6) -> Shop:
    """Each user walks through the products of one topic in order; everyone's steps interleave in time, so the
    most recent events are every user's last step."""
    shop = Shop("learn", home)
    events = [Event(f"e{u}-{s}", f"u{u}", f"{TOPICS[u % 5]}-{(u // 5 + s) % 8}", "purchase", T0 + s * 1000 + u)
              for s in range(steps) for u in range(users)]
    with shop.store() as store:
        store.upsert_products([Product(f"{t}-{n}", f"{t} model {n}") for t in TOPICS for n in range(8)])
        store.append_events(events)
    return shop


def baseline_trainer(poisoned: bool):  # noqa: ANN201
    """A candidate without training: the baseline tables of the events before the cutoff; poisoned, every item
    index points at another product."""
    def train(shop: Shop, cutoff: float, config: RetrainConfig):  # noqa: ANN202
        from shoprank.baseline.build import recommend_artifacts
        from shoprank.recommend.pipeline import log_of, read_log

        full = read_log(shop)
        art = recommend_artifacts(log_of(full.catalogue, [e for e in full.events if e.timestamp < cutoff]))
        if poisoned:  # a random relabelling: the tables now speak of other products
            import random

            random.Random(3).shuffle(art.item_ids)
        return art

    return train


def test_durations_and_the_recent_window() -> None:
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800 and parse_duration("1.5h") == 5400
    assert parse_duration("2d") == 172_800 and parse_duration("45") == 45
    for bad in ("", "1w", "-3m", "0s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert recent_cutoff([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.2) == 9
    events = [Event("a", "u", "x", "view", 1), Event("b", "u", "y", "view", 5), Event("c", "v", "x", "view", 6)]
    holdout = recommend_holdout(events, 5, {"x", "y"})
    assert holdout.users == ["u"] and holdout.targets == ["y"] and [e.item_id for e in holdout.histories[0]] == ["x"]


def test_a_regression_is_refused_and_a_better_model_published(home: Path) -> None:
    shop = topic_shop(home)
    config = RetrainConfig(min_new_events=0, holdout_share=0.17, min_holdout=20)
    poisoned = {"recommend": baseline_trainer(poisoned=True)}
    first, = retrain_once(shop, config, ("recommend",), trainers=poisoned)
    assert first.decision == "published" and first.reason == "no model was serving"
    serving = latest_version(shop.models_path, "recommend")

    good, = retrain_once(shop, config, ("recommend",), trainers={"recommend": baseline_trainer(poisoned=False)})
    assert good.decision == "published", good.reason
    assert good.candidate > good.serving and good.held_out == 60  # every user's last step is held out
    manifest = open_bundle(shop.models_path, "recommend").params["retrain"]
    assert manifest["decision"] == "published" and manifest["serving_version"] == serving
    assert manifest["candidate"] == good.candidate and manifest["serving"] == good.serving
    serving = latest_version(shop.models_path, "recommend")

    bad, = retrain_once(shop, config, ("recommend",), trainers=poisoned)
    assert bad.decision == "refused" and "regression" in bad.reason and bad.candidate < bad.serving
    assert latest_version(shop.models_path, "recommend") == serving  # the old model keeps serving
    lines = [json.loads(line) for line in (shop.path / "runs" / "retrain.jsonl").read_text().splitlines()]
    assert [line["decision"] for line in lines] == ["published", "published", "refused"]


def test_not_enough_new_traffic_or_held_out_traffic_publishes_nothing(home: Path) -> None:
    shop = topic_shop(home)
    waiting, = retrain_once(shop, RetrainConfig(min_new_events=10_000), ("recommend",))
    assert waiting.decision == "skipped" and "waiting for 10000" in waiting.reason
    thin, = retrain_once(shop, RetrainConfig(min_new_events=0, min_holdout=500), ("recommend",))
    assert thin.decision == "skipped" and "held-out users" in thin.reason
    search, = retrain_once(shop, RetrainConfig(min_new_events=0), ("search",))
    assert search.decision == "skipped" and "held-out queries" in search.reason  # no search traffic yet
    assert latest_version(shop.models_path, "recommend") is None


def test_the_real_sequence_model_candidate_beats_a_poisoned_serving_one(home: Path) -> None:
    pytest.importorskip("torch")
    shop = topic_shop(home)
    config = RetrainConfig(min_new_events=0, holdout_share=0.17, encoder="hash:64", threads=1,
                           overrides={"d_model": 32, "n_layers": 1, "n_heads": 1, "epochs": 12, "batch_size": 16,
                                      "learning_rate": 5e-3, "patience": 12, "eval_users": 0})
    retrain_once(shop, config, ("recommend",), trainers={"recommend": baseline_trainer(poisoned=True)})
    verdict, = retrain_once(shop, config, ("recommend",))
    assert verdict.decision == "published" and verdict.candidate > verdict.serving
    assert "config" in open_bundle(shop.models_path, "recommend").params  # a trained SASRec bundle now


def test_cli_train_watch_once_and_baseline(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.cli.main import main

    shop = topic_shop(home)
    assert main(["train", "watch", "--shop", "learn", "--once", "--min-new-events", "100000"]) == 0
    out = capsys.readouterr().out
    assert "learn recommend: skipped" in out and "learn search: skipped" in out
    assert main(["train", "watch", "--shop", "learn", "--every", "soon"]) == 1
    assert main(["baseline", "--shop", "learn", "--lexical-only"]) == 0
    assert "baseline published" in capsys.readouterr().out
    assert latest_version(shop.models_path, "search").startswith("baseline-")
    assert latest_version(shop.models_path, "recommend").startswith("baseline-")


def tiny_search_trainer(poisoned: bool):  # noqa: ANN201
    """The tiny search stack of tests/test_search_helpers (keyword encoder, no publish); poisoned, its rows name
    other products."""
    def train(shop: Shop, cutoff: float, config: RetrainConfig):  # noqa: ANN202
        import random
        from dataclasses import replace as change

        from shoprank.search.data import load_search_data
        from shoprank.search.train import profile_config, train_search
        from tests.test_search_helpers import KeywordEncoder, register_keyword_encoder

        register_keyword_encoder()
        with shop.store(create=False) as store:
            data = load_search_data(store, test_share=0.2, labels="judgments")
        base = profile_config("quick")
        cfg = change(base, stack=change(base.stack, encoder="keyword", lexical_k=20, dense_k=20), biencoder=None,
                     cross=None, fusion_share=0.4, valid_share=0.2)
        cfg.fusion.min_data_in_leaf = 2
        stack, _ = train_search(data, cfg, progress=False, report=lambda s: None, encoder=KeywordEncoder())
        if poisoned:
            ids = list(stack.catalog.ids)
            random.Random(5).shuffle(ids)
            stack.catalog.ids = ids
        return stack, {"catalog_version": 0}

    return train


def test_search_regression_refused_on_recent_clicks(home: Path) -> None:
    from shoprank.data.impressions import Impression
    from tests.test_search_helpers import KEYWORDS, train_tiny_search

    shop = Shop("hardware", home)
    train_tiny_search(shop)
    serving = latest_version(shop.models_path, "search")
    impressions, events = [], []
    for n, word in enumerate(KEYWORDS * 4):  # shoppers search '<word> model N' and buy that product
        query, item, rid = f"{word} model {n % 6}", f"{word}-{n % 6}", f"r{n}"
        impressions.append(Impression(rid, T0 + n, "search", (item, f"{word}-{(n + 1) % 6}"), (0, 1), query=query))
        events.append(Event(f"p{n}", f"u{n}", item, "purchase", T0 + n + 0.5, request_id=rid, position=0))
    with shop.store() as store:
        store.append_impressions(impressions)
        store.append_events(events)
    config = RetrainConfig(min_new_events=0, holdout_share=0.5, min_holdout=3)
    bad, = retrain_once(shop, config, ("search",), trainers={"search": tiny_search_trainer(poisoned=True)})
    assert bad.decision == "refused" and bad.candidate < bad.serving and bad.held_out >= 3, bad.reason
    assert latest_version(shop.models_path, "search") == serving
    good, = retrain_once(shop, config, ("search",), trainers={"search": tiny_search_trainer(poisoned=False)})
    assert good.decision == "published" and good.candidate >= good.serving, good.reason
    assert open_bundle(shop.models_path, "search").params["retrain"]["serving_version"] == serving
