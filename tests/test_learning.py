"""Learning from behaviour: the click log, propensities, labels and the counterfactual estimate, on known answers."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

from shoprank.data.impressions import Impression
from shoprank.data.records import Event
from shoprank.learning import (
    BehaviourConfig,
    ClickLog,
    Propensities,
    ServedList,
    behaviour_gains,
    build_click_log,
    estimate_clicks,
    fit_pbm_em,
    harvest,
)
from shoprank.learning.randomise import swap_adjacent
from shoprank.learning.simulate import ShopperModel


def simulated_log(bias: float, queries: int, sessions: int, shuffle: bool, seed: int = 0) -> ClickLog:
    """Ten products per query of random relevance, each session shown a shuffled (or swapped) order."""
    rng = np.random.default_rng(seed)
    shopper = ShopperModel(bias=bias, noise=0.05, active=1.0)
    lists = []
    for q in range(queries):
        items = [f"p{q}-{i}" for i in range(10)]
        relevance = {p: float(rng.random()) ** 2 for p in items}
        base = sorted(items, key=lambda p: -relevance[p])
        for s in range(sessions):
            shown = list(rng.permutation(base)) if shuffle else swap_adjacent(base, 0.5, rng, 10)
            outcomes = shopper.session(shown, list(range(10)), relevance, rng)
            lists.append(ServedList(f"{q}-{s}", f"q{q}", tuple(shown), tuple(range(10)), tuple(outcomes)))
    return ClickLog(lists)


@pytest.mark.parametrize("bias", [0.7, 1.0])
def test_em_recovers_a_known_position_bias_within_ten_percent(bias: float) -> None:
    log = simulated_log(bias, queries=400, sessions=25, shuffle=True)
    theta = fit_pbm_em(log, max_position=10).theta
    truth = (1.0 / np.arange(1, 11)) ** bias
    assert np.all(np.abs(theta / truth - 1) < 0.10), np.round(theta / truth - 1, 3)


def test_harvesting_recovers_a_known_position_bias_within_ten_percent() -> None:
    log = simulated_log(1.0, queries=400, sessions=25, shuffle=True, seed=1)
    theta = harvest(log, max_position=10).theta
    truth = 1.0 / np.arange(1, 11)
    assert np.all(np.abs(theta / truth - 1) < 0.10), np.round(theta / truth - 1, 3)


def test_harvesting_without_interventions_says_what_is_missing() -> None:
    lists = [ServedList(f"r{i}", "drill", ("a", "b"), (0, 1), ("click", None)) for i in range(10)]
    with pytest.raises(ValueError, match="randomisation"):
        harvest(ClickLog(lists))


def _event(n: int, item: str, kind: str, **extra: Any) -> Event:
    return Event(f"e{n}", "u1", item, kind, time.time() - 100 + n, **extra)


def test_click_log_and_labels_from_a_hand_made_log() -> None:
    impressions = [Impression("r1", time.time() - 200, "search", ("a", "b", "c"), (0, 1, 2), query=" Cordless  DRILL",
                              model_version="v1")]
    events = [_event(1, "b", "click", request_id="r1"), _event(2, "b", "purchase", request_id="r1"),
              _event(3, "x", "click", query="saw", position=3, session_id="s9")]
    log = build_click_log(impressions, events)
    first, loose = log.lists
    assert first.query == "cordless drill" and first.outcomes == (None, "purchase", None) and first.complete
    assert loose.items == ("x",) and loose.positions == (3,) and not loose.complete
    # uniform propensities: clicks 2 over 4 examinations -> Beta(1, 1) prior; posterior Beta(1 + clicks, 1 + skips)
    naive = behaviour_gains(log, Propensities.uniform(4), BehaviourConfig())
    assert naive["cordless drill"] == {"a": pytest.approx(0.6 / 3, abs=1e-3), "b": pytest.approx(2 / 3, abs=1e-3),
                                       "c": pytest.approx(0.6 / 3, abs=1e-3)}
    assert naive["saw"] == {"x": pytest.approx(0.6 * 2 / 3, abs=1e-3)}
    theta = Propensities(np.asarray([1.0, 0.5, 0.25, 0.2]), "em")
    gains = behaviour_gains(log, theta, BehaviourConfig(examined=0.5))
    assert set(gains["cordless drill"]) == {"a", "b"}  # c: skipped where few look (theta 0.25): unknown
    assert gains["cordless drill"]["b"] > naive["cordless drill"]["b"]  # bought where half look: stronger
    assert gains["saw"]["x"] > naive["saw"]["x"]


def test_deep_clicks_count_more_and_deep_skips_less_but_one_stray_click_does_not_top_the_list() -> None:
    theta = Propensities(1.0 / np.arange(1, 21))
    top_twice = [ServedList(f"t{i}", "q", ("top",), (0,), ("click",)) for i in range(2)]
    deep_once = [ServedList("d1", "q", ("deep",), (15,), ("click",)), ServedList("d2", "q", ("deep",), (15,), (None,))]
    skips = [ServedList(f"s{i}", "q", ("skip-top", "skip-deep"), (0, 15), (None, None)) for i in range(2)]
    config = BehaviourConfig(examined=0.0)
    gains = behaviour_gains(ClickLog(top_twice + deep_once + skips), theta, config)["q"]
    naive = behaviour_gains(ClickLog(top_twice + deep_once + skips), Propensities.uniform(20), config)["q"]
    assert gains["deep"] > naive["deep"] and gains["skip-deep"] > gains["skip-top"]
    assert gains["top"] > gains["deep"] > gains["skip-deep"]


def test_snips_on_a_hand_computed_case() -> None:
    theta = Propensities(np.asarray([1.0, 0.5]))
    log = ClickLog([ServedList("r1", "q", ("a", "b"), (0, 1), (None, "click"))])
    swapped = estimate_clicks(log, {"q": ["b", "a"]}, theta)
    # weights: b 1 / 0.5 = 2, a 0.5 / 1 = 0.5; IPS = 2 * 1 / 1 list; SNIPS = 2 / 2.5 * 2 pairs / 1 list
    assert swapped.logged == 1.0 and swapped.ips == pytest.approx(2.0) and swapped.snips == pytest.approx(1.6)
    same = estimate_clicks(log, {"q": ["a", "b"]}, theta)
    assert same.snips == pytest.approx(1.0) and same.ips == pytest.approx(1.0)
    dropped = estimate_clicks(log, {"q": ["a", "z"]}, theta)  # b no longer shown: its click is lost
    assert dropped.ips == 0.0 and dropped.coverage == 0.5
    assert math.isnan(estimate_clicks(log, {"other": ["a"]}, theta).snips)


def test_randomisation_moves_a_product_one_place_at_most() -> None:
    rng = np.random.default_rng(0)
    items = list(range(30))
    for _ in range(50):
        out = swap_adjacent(items, 0.5, rng, depth=20)
        assert sorted(out) == items and out[20:] == items[20:]
        assert all(abs(out.index(i) - i) <= 1 for i in items)
    assert swap_adjacent(items, 0.0, rng) == items
    with pytest.raises(ValueError, match="between 0"):
        swap_adjacent(items, 1.5, rng)
