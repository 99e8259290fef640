"""Search analytics of one shop over a period, from its impression log and the events attributed to it.

A *search* is a first-page search answer (a later page of the same query is the same search, read further).
Its click-through is the share of searches with at least one attributed click; conversion the share with an
attributed purchase. Click-through by position counts, for each position, the answers that showed a
product there (any page) and those in which that position was clicked. Answers recorded before the log
kept match counts and latencies count as searches but not in the zero-result or latency figures.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shoprank.data.impressions import SURFACES
from shoprank.data.outcomes import Outcome
from shoprank.store.base import Store


@dataclass(frozen=True)
class AnalyticsConfig:
    """What the report lists: ``top`` queries per list, ``low_results`` (a search with 1..low_results matches
    is "low-result"), positions ``0 .. positions - 1`` in the click-through curve."""

    top: int = 20
    low_results: int = 3
    positions: int = 20

    def __post_init__(self) -> None:
        for name in ("top", "low_results", "positions"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 1000:
                raise ValueError(f"AnalyticsConfig.{name} must be a whole number from 1 to 1000, got {value!r}")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def summarise(outcomes: Iterable[Outcome], config: AnalyticsConfig | None = None) -> dict[str, Any]:
    """The analytics of ``outcomes`` (in time order) as one JSON-ready dict."""
    config = config or AnalyticsConfig()
    searches = zero = 0
    per_query: dict[str, Counter[str]] = defaultdict(Counter)
    zero_queries: Counter[str] = Counter()
    low_queries: dict[str, list[int]] = defaultdict(list)
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    shown_at = np.zeros(config.positions, dtype=np.int64)
    clicked_at = np.zeros(config.positions, dtype=np.int64)
    surfaces: dict[str, Counter[str]] = {s: Counter() for s in SURFACES}
    latencies: list[float] = []
    for outcome in outcomes:
        imp = outcome.impression
        clicked = outcome.did("click")
        by_surface = surfaces.setdefault(imp.surface, Counter())
        by_surface["impressions"] += 1
        by_surface["clicked"] += clicked
        by_surface["add_to_cart"] += outcome.did("add_to_cart")
        by_surface["purchase"] += outcome.did("purchase")
        for position in imp.positions:
            if position < config.positions:
                shown_at[position] += 1
        for position in outcome.clicked_positions():
            if position < config.positions:
                clicked_at[position] += 1
        if imp.latency_ms is not None:
            latencies.append(imp.latency_ms)
        if imp.surface != "search" or imp.page != 1:
            continue
        searches += 1
        query = imp.query or ""
        day = per_day[_day(imp.timestamp)]
        day["searches"] += 1
        counts = per_query[query]
        counts["searches"] += 1
        counts["clicked"] += clicked
        counts["purchased"] += outcome.did("purchase")
        if imp.total == 0 or (imp.total is None and not imp.items):
            zero += 1
            zero_queries[query] += 1
            day["zero_result"] += 1
        elif imp.total is not None and imp.total <= config.low_results:
            low_queries[query].append(imp.total)
    top = sorted(per_query.items(), key=lambda kv: (-kv[1]["searches"], kv[0]))[: config.top]
    return {
        "searches": searches,
        "distinct_queries": len(per_query),
        "zero_result_searches": zero,
        "zero_result_rate": _rate(zero, searches),
        "top_queries": [{"query": q, "count": c["searches"], "clicks": c["clicked"],
                         "ctr": _rate(c["clicked"], c["searches"]), "conversion": _rate(c["purchased"], c["searches"])}
                        for q, c in top],
        "zero_result_queries": [{"query": q, "count": n}
                                for q, n in sorted(zero_queries.items(), key=lambda kv: (-kv[1], kv[0]))[: config.top]],
        "low_result_queries": [{"query": q, "count": len(ns), "results": min(ns)}
                               for q, ns in sorted(low_queries.items(), key=lambda kv: (-len(kv[1]), kv[0]))
                               [: config.top]],
        "ctr_by_position": [{"position": p, "impressions": int(shown_at[p]), "clicks": int(clicked_at[p]),
                             "ctr": _rate(int(clicked_at[p]), int(shown_at[p]))}
                            for p in range(config.positions) if shown_at[p]],
        "surfaces": {s: {"impressions": c["impressions"], "ctr": _rate(c["clicked"], c["impressions"]),
                         "add_to_cart_rate": _rate(c["add_to_cart"], c["impressions"]),
                         "purchase_rate": _rate(c["purchase"], c["impressions"])}
                     for s, c in surfaces.items()},
        "searches_per_day": [{"day": d, "searches": c["searches"], "zero_result": c["zero_result"],
                              "zero_result_rate": _rate(c["zero_result"], c["searches"])}
                             for d, c in sorted(per_day.items())],
        "latency_ms": _percentiles(latencies),
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "answers": 0}
    p50, p90, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "answers": len(values)}


def shop_analytics(store: Store, *, days: float | None = 30.0, since: float | None = None,
                   until: float | None = None, config: AnalyticsConfig | None = None,
                   now: float | None = None) -> dict[str, Any]:
    """The shop's analytics for ``since <= t < until``; without ``since``, the last ``days`` days (None: all)."""
    now = time.time() if now is None else now
    if since is None and days is not None:
        since = now - days * 86_400
    report = summarise(store.impression_outcomes(since=since, until=until), config)
    return {"since": since, "until": until, **report}
