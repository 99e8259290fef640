"""Trends and the surge test on tiny histories with known answers; classification metrics; decisions."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.evaluation.metrics import accuracy, f1_per_class, macro_auc_ovr, macro_f1
from shoprank.sentiment.decision import decide, fit_offsets
from shoprank.sentiment.labels import label_index, label_of_rating, polarity
from shoprank.sentiment.monitor import DAY, AlertConfig, Observation, detect, detect_scope, surge_p_value, trend

T0 = 1_700_000_000.0  # 2023-11-14


def quiet(days: int = 360, every: float = 2.0, negative_each: int = 10) -> tuple[list[float], list[bool]]:
    times = list(np.arange(0, days, every) * DAY + T0)
    return times, [i % negative_each == 0 for i in range(len(times))]


def test_quiet_history_raises_nothing() -> None:
    times, neg = quiet()
    assert detect_scope(times, neg, AlertConfig(), 0.1, "product:a") == []


def test_a_burst_alerts_once_when_the_tail_probability_drops_below_alpha() -> None:
    times, neg = quiet()  # a review every 2 days, one in ten negative
    start = times[-1] + DAY
    burst = [start + h * 3600 for h in (0, 10, 20, 30, 40)]
    alerts = detect_scope(times + burst, neg + [True] * 5, AlertConfig(), 0.1, "product:a")
    assert len(alerts) == 1  # quiet for a window after alerting
    alert = alerts[0]
    # the window holds 3 quiet reviews; the baseline 90 reviews with 9 negatives
    assert surge_p_value(3, 6, 9, 90, 0.1, 10) >= 0.01  # third burst review: not yet significant
    assert alert["scope"] == "product:a" and alert["at_epoch"] == burst[3]
    assert (alert["negatives"], alert["reviews"], alert["baseline_reviews"]) == (4, 7, 90)
    assert alert["negative_share"] == pytest.approx(4 / 7)
    assert alert["baseline_share"] == pytest.approx((10 * 0.1 + 9) / (10 + 90))  # posterior mean
    assert alert["p_value"] == pytest.approx(surge_p_value(4, 7, 9, 90, 0.1, 10)) and alert["p_value"] < 0.01


def test_p_value_is_a_beta_binomial_tail() -> None:
    # with a huge, exact baseline the predictive is binomial: P(K >= 2 | n=2, p=0.5) = 0.25
    assert surge_p_value(2, 2, 50_000, 100_000, 0.5, 1.0) == pytest.approx(0.25, abs=1e-3)
    # a small baseline is uncertain: the same surge is less surprising than against a large one
    assert surge_p_value(3, 4, 1, 10, 0.1, 10) > surge_p_value(3, 4, 10, 100, 0.1, 10)


def test_detect_covers_products_categories_and_topics() -> None:
    rows = [Observation(T0 + i * DAY, "a", "Tools", 0 if i % 10 == 0 else 2, ("price",)) for i in range(200)]
    rows += [Observation(T0 + (200 + i / 4) * DAY, "a", "Tools", 0, ("price",)) for i in range(6)]
    scopes = {a["scope"] for a in detect(rows)}
    assert scopes == {"product:a", "category:Tools", "topic:price"}
    assert {a["scope"] for a in detect(rows, scopes=("product",))} == {"product:a"}


def test_weekly_trend_known_answer() -> None:
    monday = 1_700_438_400.0  # 2023-11-20, a Monday, 00:00 UTC
    rows = [Observation(monday + 3600, "a", "X", 0, (), -1.0), Observation(monday + 6 * DAY, "a", "X", 2, (), 1.0),
            Observation(monday + 7 * DAY, "a", "X", 2, (), 0.5), Observation(monday, "b", "Y", 1, (), 0.0)]
    points = trend(rows, "week", product_id="a")
    assert [(p["start"], p["reviews"], p["negative"], p["positive"]) for p in points] == [
        ("2023-11-20T00:00:00Z", 2, 1, 1), ("2023-11-27T00:00:00Z", 1, 0, 1)]
    assert points[0]["negative_share"] == 0.5 and points[1]["mean_score"] == 0.5
    assert [p["reviews"] for p in trend(rows, "month")] == [4]
    with pytest.raises(ValueError, match="interval must be one of"):
        trend(rows, "year")


def test_alert_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        AlertConfig(alpha=2)
    with pytest.raises(ValueError, match="unknown alert settings"):
        AlertConfig.from_settings({"alpah": 0.1})
    assert AlertConfig.from_settings({"alpha": 0.05}).alpha == 0.05


def test_labels_and_polarity() -> None:
    assert [label_of_rating(r) for r in (1, 2, 3, 4, 5, None)] == [0, 0, 1, 2, 2, None]
    assert label_index("Positive") == 2 and label_index("负面") == 0
    with pytest.raises(ValueError, match="valid labels"):
        label_index("meh")
    assert polarity(np.array([[0.7, 0.2, 0.1], [0, 0, 1.0]])).tolist() == pytest.approx([-0.6, 1.0])


def test_classification_metrics_known_answers() -> None:
    truth, pred = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    assert accuracy(pred, truth) == pytest.approx(4 / 6)
    f1 = f1_per_class(pred, truth)
    assert f1 == pytest.approx({0: 0.5, 1: 2 / 3, 2: 0.8})
    assert macro_f1(pred, truth) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    probs = np.array([[0.9, 0, 0.1], [0.8, 0, 0.2], [0.3, 0, 0.7], [0.1, 0, 0.9]])
    assert macro_auc_ovr(probs, [0, 0, 2, 2]) == 1.0


def test_offsets_rescue_a_rare_class_on_validation() -> None:
    # the neutral class is always second best: argmax never predicts it, an offset does
    probs = np.array([[0.1, 0.4, 0.5]] * 5 + [[0.05, 0.1, 0.85]] * 5)
    truth = [1] * 5 + [2] * 5
    assert set(decide(probs).tolist()) == {2}
    offsets = fit_offsets(probs, truth)
    assert decide(probs, offsets).tolist() == truth
    # a class the model never saw is never predicted, whatever the offset
    assert set(decide(np.array([[0.0, 0.5, 0.5]]), [5.0, 0, 0]).tolist()) <= {1, 2}
