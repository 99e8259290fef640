"""The statistics of experiment reports on simulated traffic with known answers: the sequential test keeps
its false-positive rate under the nominal level however often it is read, and finds a real effect."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shoprank.abtest.config import Experiment, Variant
from shoprank.abtest.report import ab_report
from shoprank.abtest.stats import difference, msprt_p, sample_needed, sequential_sign_p, sign_test, wilson
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome


def traffic(rng: np.random.Generator, n: int, pa: float, pb: float) -> tuple[np.ndarray, np.ndarray]:
    arm = rng.integers(0, 2, n)
    return arm, (rng.random(n) < np.where(arm == 1, pb, pa)).astype(np.int8)


def test_known_values() -> None:
    low, high = wilson(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024)
    assert sign_test(0, 0) == 1.0
    diff, low, high, p = difference(100, 1000, 130, 1000)
    assert diff == pytest.approx(0.03) and low < 0.03 < high and 0.01 < p < 0.05


def test_aa_false_positive_rate_stays_under_alpha_when_read_after_every_answer() -> None:
    """400 A/A experiments of 40,000 answers each, the test read after every answer (the worst peeking):
    the always-valid p-value falls under 0.05 in at most 5% of them; a fixed-horizon z-test read every 1,000
    answers does far worse, which is why it does not decide."""
    rng = np.random.default_rng(7)
    sequential = naive = 0
    runs = 400
    for _ in range(runs):
        arm, clicked = traffic(rng, 40_000, 0.1, 0.1)
        sequential += msprt_p(arm, clicked) < 0.05
        na, xa = np.cumsum(arm == 0), np.cumsum(clicked * (arm == 0))
        nb, xb = np.cumsum(arm == 1), np.cumsum(clicked * (arm == 1))
        naive += any(difference(int(xa[i]), int(na[i]), int(xb[i]), int(nb[i]))[3] < 0.05
                     for i in range(999, 40_000, 1000))
    assert sequential / runs <= 0.05
    assert naive / runs > 0.15


def test_power_on_a_known_effect() -> None:
    rng = np.random.default_rng(11)
    found = sum(msprt_p(*traffic(rng, 10_000, 0.10, 0.13)) < 0.05 for _ in range(100))
    assert found >= 80


def test_sample_needed_shrinks_as_the_sample_grows_and_is_zero_once_decided() -> None:
    small = sample_needed(10, 100, 13, 100, 0.05)
    large = sample_needed(1000, 10_000, 1300, 10_000, 0.05)
    assert small is not None and small > 1000 and large == 0
    assert sample_needed(10, 100, 10, 100, 0.05) is None  # no difference to detect


def test_sequential_sign_test_is_valid_on_coin_flips_and_finds_a_preference() -> None:
    rng = np.random.default_rng(3)
    fair = sum(sequential_sign_p(rng.choice([-1, 0, 1], 3000)) < 0.05 for _ in range(300))
    assert fair / 300 <= 0.05
    biased = sum(sequential_sign_p(rng.choice([-1, 1], 600, p=[0.4, 0.6])) < 0.05 for _ in range(100))
    assert biased >= 80


def _experiment(*names: str) -> Experiment:
    return Experiment("e", "ab", "search", tuple(Variant(n) for n in names), tuple(1 / len(names) for _ in names))


def _outcomes(rng: np.random.Generator, rates: dict[str, float], n: int) -> list[Outcome]:
    names = list(rates)
    out = []
    for i in range(n):
        variant = names[int(rng.integers(0, len(names)))]
        imp = Impression(f"r{i}", float(i), "search", ("p",), (0,), experiment="e", variant=variant)
        events = (("click", "p", 0, float(i)),) if rng.random() < rates[variant] else ()
        out.append(Outcome(imp, events))
    return out


def test_a_seeded_simulation_names_the_better_variant() -> None:
    rng = np.random.default_rng(5)
    report = ab_report(_experiment("A", "B"), _outcomes(rng, {"A": 0.10, "B": 0.14}, 12_000))
    assert report["winner"] == "B" and report["always_valid_p"] < 0.05 and report["sample_needed"] == 0
    a, b = report["variants"]["A"], report["variants"]["B"]
    assert a["impressions"] + b["impressions"] == 12_000
    assert a["ctr_interval"][0] < a["ctr"] < a["ctr_interval"][1]
    assert report["interval"][0] < report["difference"] < report["interval"][1]
    early = ab_report(_experiment("A", "B"), _outcomes(rng, {"A": 0.10, "B": 0.14}, 400))
    assert early["winner"] is None and early["sample_needed"] > 0
    three = ab_report(_experiment("A", "B", "C"), _outcomes(rng, {"A": 0.10, "B": 0.10, "C": 0.16}, 15_000))
    assert three["winner"] == "C" and len(three["comparisons"]) == 2
    assert math.isclose(sum(v["impressions"] for v in three["variants"].values()), 15_000)
