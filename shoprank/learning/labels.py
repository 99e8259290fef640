"""Graded relevance labels from the click log, corrected for position bias.

Under the position-based model a product shown at position k is clicked with probability ``theta[k] * g``,
``g`` its relevance. A (query, product)'s label is the posterior mean of ``g`` given its clicks and skips at
their positions (a Beta prior whose mean is the log's clicks over expected examinations, worth
``prior_strength`` examinations), times the mean grade of its outcomes (purchase 1.0, add-to-cart 0.8,
click 0.6). A click far down the list, where few look, says more than one at the top; a skip far down says
almost nothing. With uniform propensities this is the naive click-through label (the same estimator, every
shown place taken as examined). The posterior keeps what inverse-propensity weights give in expectation
without their variance: one stray click at place 15 does not outrank a product clicked by every shopper.

A product shown and skipped where it was likely examined (``theta >= examined``) is kept (its label is low):
negative evidence for the encoders. Skipped products further down are left out (unknown), as are products
never shown. Lists rebuilt from events alone give their clicked products only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoprank.data.limits import EVENT_GRADES
from shoprank.data.records import Judgment
from shoprank.learning.clicklog import ClickLog
from shoprank.learning.propensity import METHODS, Propensities, estimate

GRADES = EVENT_GRADES


@dataclass(frozen=True)
class BehaviourConfig:
    correction: str = "harvest"  # harvest, em (see propensity.py) or none (naive click training)
    max_position: int = 20  # propensities are estimated for the first so many places
    floor: float = 0.05  # inverse-propensity weights are at most 1 / floor
    examined: float = 0.5  # a skipped product counts as a negative where theta >= this
    min_clicks: int = 1  # a query teaches nothing without a click
    prior_strength: float = 2.0  # pseudo-examinations of the Beta prior of relevance (see behaviour_gains)

    def __post_init__(self) -> None:
        if self.correction not in METHODS:
            raise ValueError(f"unknown correction {self.correction!r}; valid: {', '.join(METHODS)}")
        if self.max_position < 1:
            raise ValueError(f"max_position must be at least 1, got {self.max_position}")
        if not 0 < self.floor <= 1 or not 0 <= self.examined <= 1:
            raise ValueError("floor must lie in (0, 1] and examined in [0, 1]")
        if self.prior_strength <= 0:
            raise ValueError(f"prior_strength must be positive, got {self.prior_strength}")


def propensities_for(log: ClickLog, config: BehaviourConfig) -> Propensities:
    """The configured estimate; a log that cannot identify position bias falls back to no correction
    (said in ``info["fallback"]``)."""
    try:
        return estimate(log, config.correction, config.max_position, config.floor)
    except ValueError as exc:
        fallback = Propensities.uniform(config.max_position)
        fallback.info["fallback"] = str(exc)
        return fallback


def behaviour_gains(log: ClickLog, propensities: Propensities, config: BehaviourConfig
                    ) -> dict[str, dict[str, float]]:
    """query -> {product id: label in [0, 1]} (see the module docstring)."""
    keys: dict[tuple[str, str], int] = {}
    key_of, theta_of, clicked_of, examined, grade_sum = [], [], [], [], []
    for served in log.lists:
        theta = propensities.at(list(served.positions)) if served.positions else []
        for pid, outcome, t in zip(served.items, served.outcomes, theta, strict=True):
            k = keys.setdefault((served.query, pid), len(keys))
            if k == len(examined):
                examined.append(0.0)
                grade_sum.append(0.0)
            key_of.append(k)
            theta_of.append(float(t))
            clicked_of.append(outcome is not None)
            if outcome is not None:
                grade_sum[k] += GRADES[outcome]
            if served.complete:
                examined[k] = max(examined[k], float(t))
    if not keys:
        return {}
    key = np.asarray(key_of)
    theta = np.asarray(theta_of)
    clicked = np.asarray(clicked_of)
    n_clicks = np.bincount(key, clicked.astype(float), len(keys))
    a, b = prior_of(theta, clicked, config.prior_strength)
    gamma = posterior_relevance(key[~clicked], theta[~clicked], n_clicks, a, b)
    grade = np.where(n_clicks > 0, np.asarray(grade_sum) / np.maximum(n_clicks, 1.0), GRADES["click"])
    query_clicks: Counter[str] = Counter(q for (q, _), k in keys.items() if n_clicks[k] > 0)
    out: dict[str, dict[str, float]] = {}
    for (query, pid), k in keys.items():
        if query_clicks[query] < config.min_clicks:
            continue
        if n_clicks[k] > 0 or examined[k] >= config.examined:
            out.setdefault(query, {})[pid] = float(gamma[k] * grade[k])
    return out


def prior_of(theta: np.ndarray, clicked: np.ndarray, strength: float) -> tuple[float, float]:
    """Beta(a, b) prior of relevance: mean = clicks / expected examinations over the whole log."""
    mean = float(np.clip(clicked.sum() / max(theta.sum(), 1e-9), 1e-3, 0.999))
    return mean * strength, (1.0 - mean) * strength


def posterior_relevance(skip_key: np.ndarray, skip_theta: np.ndarray, n_clicks: np.ndarray, a: float, b: float,
                        grid: int = 201) -> np.ndarray:
    """Posterior mean of each key's relevance under the position-based model, on a grid.

    Likelihood of relevance g: prod over clicks of theta * g, over skips of (1 - theta * g); prior Beta(a, b)."""
    g = (np.arange(grid) + 0.5) / grid  # (G,)
    log_post = np.outer(n_clicks + a - 1.0, np.log(g)) + (b - 1.0) * np.log1p(-g)[None, :]  # (K, G)
    np.add.at(log_post, skip_key, np.log1p(-np.outer(skip_theta, g)))
    log_post -= log_post.max(axis=1, keepdims=True)
    weights = np.exp(log_post)
    return (weights @ g) / weights.sum(axis=1)


def pseudo_judgments(gains: dict[str, dict[str, float]], lowest: float = 0.0, top_gain: float = 1.0
                     ) -> list[Judgment]:
    """The labels as judgments on the shop's grade scale (``lowest + label * top_gain``)."""
    return [Judgment(q, pid, lowest + g * top_gain) for q, items in gains.items() for pid, g in items.items()]


def item_stats(events: Iterable[Any], log: ClickLog, propensities: Propensities | None = None,
               skip_queries: set[str] | None = None, prior: tuple[float, float] = (0.1, 1.0)) -> Any:
    """Popularity (log of type-weighted event counts) and click-through per product, from the log.

    Click-through is bias-corrected clicks over impressions where the log has impressions (``prior``:
    pseudo clicks and impressions), else over views and clicks as in :meth:`ItemStats.from_events`.
    ``skip_queries``: normalised queries whose events and impressions must not count (held-out ones)."""
    from shoprank.data.splits import normalise_query
    from shoprank.ranking.features import ItemStats

    skip = skip_queries or set()
    kept = [e for e in events if not (e.query and normalise_query(e.query) in skip)]
    stats = ItemStats.from_events(kept)
    corrected: dict[str, float] = {}
    impressions: Counter[str] = Counter()
    for served in log.lists:
        if not served.complete or served.query in skip:
            continue
        weights = propensities.weight(list(served.positions)) if propensities is not None else [1.0] * len(
            served.items)
        for pid, clicked, w in zip(served.items, served.clicked, weights, strict=True):
            impressions[pid] += 1
            if clicked:
                corrected[pid] = corrected.get(pid, 0.0) + float(w)
    for pid, n in impressions.items():
        stats.ctr[pid] = (corrected.get(pid, 0.0) + prior[0]) / (n + prior[1])
        stats.popularity.setdefault(pid, 0.0)
    return stats


def describe(gains: dict[str, dict[str, float]]) -> dict[str, Any]:
    labels = [g for items in gains.values() for g in items.values()]
    positive = sum(1 for g in labels if g > 0)
    return {"queries": len(gains), "labelled_pairs": len(labels), "positive_pairs": positive,
            "mean_positive_label": round(sum(g for g in labels if g > 0) / positive, 3) if positive else math.nan}
