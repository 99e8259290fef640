"""Sentiment over time: trends per product, category and topic, and alerts on surges of negative reviews.

The alert test, for one scope (a product, a category, a topic), evaluated at every review of that scope:

* window: the reviews of the last ``window_days`` (ending at this review); ``k`` negatives of ``n``;
* baseline: the ``baseline_days`` before the window; ``k0`` negatives of ``n0``;
* the baseline's negative share is uncertain, so it gets a Beta posterior
  ``Beta(s*p + k0, s*(1-p) + n0 - k0)`` where ``p`` is the shop-wide negative share and ``s`` the prior's
  weight in reviews (``prior_reviews``): a product with little history borrows the shop's share;
* under "nothing changed", ``k`` follows the beta-binomial predictive of that posterior with ``n`` trials;
  the alert fires when ``P(K >= k) < alpha`` **and** ``k >= min_negatives`` **and** the window's share is
  at least ``min_lift`` above the baseline's. A scope that alerted is quiet for ``window_days``.

The thresholds were chosen on the validation products of the semi-synthetic check
(``python -m bench.sentiment_alerts``), never on the products it reports.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shoprank.sentiment.labels import LABELS, NEGATIVE

DAY = 86_400.0
INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class AlertConfig:
    window_days: float = 7.0
    baseline_days: float = 180.0
    alpha: float = 0.01
    min_negatives: int = 3
    min_lift: float = 0.1
    prior_reviews: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.window_days <= 0 or self.baseline_days <= 0:
            raise ValueError("window_days and baseline_days must be positive")
        if self.min_negatives < 1 or self.prior_reviews <= 0 or not 0 <= self.min_lift < 1:
            raise ValueError("need min_negatives >= 1, prior_reviews > 0 and min_lift in [0, 1)")

    @classmethod
    def from_settings(cls, values: dict[str, Any] | None) -> AlertConfig:
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown alert settings {unknown}; valid: {', '.join(cls.__dataclass_fields__)}")
        return cls(**values)


@dataclass(frozen=True)
class Observation:
    """One scored review as monitoring sees it."""

    timestamp: float
    product_id: str
    category: str
    label: int
    topics: tuple[str, ...] = ()
    score: float = 0.0


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def surge_p_value(k: int, n: int, k0: int, n0: int, prior_share: float, prior_reviews: float) -> float:
    """P(K >= k) for K ~ BetaBinomial(n, s*p + k0, s*(1-p) + n0 - k0)."""
    from scipy.stats import betabinom

    p = min(max(prior_share, 1e-3), 1 - 1e-3)
    a = prior_reviews * p + k0
    b = prior_reviews * (1 - p) + (n0 - k0)
    return float(betabinom.sf(k - 1, n, a, b))


def detect_scope(times: Sequence[float], negative: Sequence[bool], config: AlertConfig, prior_share: float,
                 scope: str) -> list[dict[str, Any]]:
    """Alerts of one scope; ``times`` sorted ascending, ``negative[i]`` whether review ``i`` is negative."""
    t = np.asarray(times, dtype=np.float64)
    neg = np.concatenate([[0], np.cumsum(np.asarray(negative, dtype=np.int64))])  # prefix sums
    window, baseline = config.window_days * DAY, config.baseline_days * DAY
    alerts: list[dict[str, Any]] = []
    quiet_until = -np.inf
    for i in range(len(t)):
        now = t[i]
        if now < quiet_until or not negative[i]:
            continue  # a surge is only declared on the arrival of a negative review
        w0 = bisect.bisect_right(t, now - window)  # window = (now - window, now]
        b0 = bisect.bisect_right(t, now - window - baseline)
        n, k = i + 1 - w0, int(neg[i + 1] - neg[w0])
        n0, k0 = w0 - b0, int(neg[w0] - neg[b0])
        if k < config.min_negatives:
            continue
        share = k / n
        base = (config.prior_reviews * prior_share + k0) / (config.prior_reviews + n0)  # posterior mean
        if share - base < config.min_lift:
            continue
        p_value = surge_p_value(k, n, k0, n0, prior_share, config.prior_reviews)
        if p_value < config.alpha:
            alerts.append({"scope": scope, "at": iso(now), "at_epoch": float(now), "negative_share": share,
                           "baseline_share": base, "negatives": k, "reviews": n,
                           "baseline_reviews": n0, "p_value": p_value, "test": "beta-binomial surge",
                           "window_days": config.window_days})
            quiet_until = now + window
    return alerts


def scopes_of(obs: Observation) -> list[str]:
    out = [f"product:{obs.product_id}"]
    if obs.category:
        out.append(f"category:{obs.category}")
    out.extend(f"topic:{t}" for t in obs.topics)
    return out


def detect(observations: Iterable[Observation], config: AlertConfig | None = None,
           scopes: Sequence[str] = ("product", "category", "topic")) -> list[dict[str, Any]]:
    """Every alert over the whole history, oldest first."""
    config = config or AlertConfig()
    rows = sorted(observations, key=lambda o: o.timestamp)
    if not rows:
        return []
    prior = float(np.mean([o.label == NEGATIVE for o in rows]))
    grouped: dict[str, tuple[list[float], list[bool]]] = {}
    for obs in rows:
        for scope in scopes_of(obs):
            if scope.split(":", 1)[0] in scopes:
                times, negs = grouped.setdefault(scope, ([], []))
                times.append(obs.timestamp)
                negs.append(obs.label == NEGATIVE)
    alerts = [a for scope, (times, negs) in grouped.items() for a in detect_scope(times, negs, config, prior, scope)]
    return sorted(alerts, key=lambda a: (a["at_epoch"], a["scope"]))


def _bucket(seconds: float, interval: str) -> datetime:
    moment = datetime.fromtimestamp(seconds, UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def trend(observations: Iterable[Observation], interval: str = "week", *, product_id: str | None = None,
          category: str | None = None, topic: str | None = None) -> list[dict[str, Any]]:
    """Counts per class, negative share and mean score per interval, oldest first (empty intervals omitted)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    points: dict[datetime, dict[str, Any]] = {}
    for obs in observations:
        if product_id is not None and obs.product_id != product_id:
            continue
        if category is not None and obs.category != category:
            continue
        if topic is not None and topic not in obs.topics:
            continue
        start = _bucket(obs.timestamp, interval)
        point = points.setdefault(start, {"start": iso(start.timestamp()), "reviews": 0, "score_sum": 0.0,
                                          **{name: 0 for name in LABELS}})
        point["reviews"] += 1
        point[LABELS[obs.label]] += 1
        point["score_sum"] += obs.score
    out = []
    for start in sorted(points):
        point = points[start]
        total = point.pop("score_sum")
        out.append({**point, "negative_share": point["negative"] / point["reviews"],
                    "mean_score": total / point["reviews"]})
    return out
