"""Graded relevance labels from the click log, corrected for position bias.

Each shown product of a served list scores ``grade(outcome) / theta[position]`` (0 when skipped), where a
purchase grades 1.0, an add-to-cart 0.8 and a click 0.6; a (query, product)'s label is the mean over its
impressions, capped at 1: under the position-based model an unbiased estimate of its graded relevance
(inverse-propensity scoring). With uniform propensities this is the naive click-through label.

A product shown and skipped where it was likely examined (``theta >= examined``) is kept with label 0:
negative evidence for the encoders. Skipped products further down are left out (unknown), as are products
never shown. Lists rebuilt from events alone give their clicked products only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoprank.data.records import Judgment
from shoprank.learning.clicklog import ClickLog
from shoprank.learning.propensity import METHODS, Propensities, estimate

GRADES = {"purchase": 1.0, "add_to_cart": 0.8, "click": 0.6}


@dataclass(frozen=True)
class BehaviourConfig:
    correction: str = "harvest"  # harvest, em (see propensity.py) or none (naive click training)
    max_position: int = 20  # propensities are estimated for the first so many places
    floor: float = 0.05  # inverse-propensity weights are at most 1 / floor
    examined: float = 0.5  # a skipped product counts as a negative where theta >= this
    min_clicks: int = 1  # a query teaches nothing without a click

    def __post_init__(self) -> None:
        if self.correction not in METHODS:
            raise ValueError(f"unknown correction {self.correction!r}; valid: {', '.join(METHODS)}")
        if self.max_position < 1:
            raise ValueError(f"max_position must be at least 1, got {self.max_position}")
        if not 0 < self.floor <= 1 or not 0 <= self.examined <= 1:
            raise ValueError("floor must lie in (0, 1] and examined in [0, 1]")


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
    total: dict[tuple[str, str], float] = {}
    shown: Counter[tuple[str, str]] = Counter()
    examined: dict[tuple[str, str], float] = {}
    for served in log.lists:
        theta = propensities.at(list(served.positions)) if served.positions else []
        for pid, outcome, t in zip(served.items, served.outcomes, theta, strict=True):
            key = (served.query, pid)
            shown[key] += 1
            total[key] = total.get(key, 0.0) + (GRADES[outcome] / t if outcome is not None else 0.0)
            if served.complete:
                examined[key] = max(examined.get(key, 0.0), float(t))
    clicks: Counter[str] = Counter(q for (q, _), v in total.items() if v > 0)
    out: dict[str, dict[str, float]] = {}
    for key, n in shown.items():
        query, pid = key
        if clicks[query] < config.min_clicks:
            continue
        label = min(1.0, total[key] / n)
        if label > 0 or examined.get(key, 0.0) >= config.examined:
            out.setdefault(query, {})[pid] = label
    return out


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
