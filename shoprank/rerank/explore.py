"""Exploration: a bounded share of a page for new or rarely shown items, chosen by Thompson sampling.

Each eligible item below the page draws a click-through rate from
``Beta(prior_clicks + clicks, prior_misses + impressions − clicks)``; the best draws take the
exploration slots, spread evenly through the page (never the first place). At most ``share`` of the
page goes to exploration, and ``share`` itself is capped at :data:`MAX_EXPLORE_SHARE`. Pass a seeded
``rng`` for repeatable output (evaluation); exploration is off in evaluation unless asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from shoprank.data.records import Event
from shoprank.rerank._common import add_reason, check_unique, fresh
from shoprank.results import ScoredItem

EXPLORE_REASON = "new: exploring"
DEFAULT_EXPLORE_SHARE = 0.1
MAX_EXPLORE_SHARE = 0.3
"""At most 3 slots in 10 ever go to exploration, whatever is asked."""
DEFAULT_PRIOR = (1.0, 19.0)
"""Beta prior (clicks, misses) worth 20 impressions at a 5 % click-through rate."""
DEFAULT_MAX_IMPRESSIONS = 100
"""An item shown fewer times than this counts as rarely shown."""

Exposure = Mapping[str, tuple[float, float]]
"""Item id -> (clicks, impressions). Items missing from it have never been shown."""


def check_share(share: float) -> None:
    if not 0.0 <= share <= MAX_EXPLORE_SHARE or math.isnan(share):
        raise ValueError(f"explore share must lie between 0 (off) and {MAX_EXPLORE_SHARE}, got {share}")


def check_prior(prior: tuple[float, float]) -> None:
    if len(prior) != 2 or not all(isinstance(p, int | float) and math.isfinite(p) and p > 0 for p in prior):
        raise ValueError(f"the Beta prior needs two positive numbers (clicks, misses), got {prior!r}")


def explore_positions(share: float, page_size: int) -> list[int]:
    """0-based places on a page given to exploration: ``floor(share · page_size)`` of them, evenly spread."""
    check_share(share)
    slots = math.floor(share * page_size + 1e-9)
    return [(j + 1) * page_size // (slots + 1) for j in range(slots)]


def thompson_draws(
    ids: Sequence[str], exposure: Exposure, prior: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """One click-through-rate draw per id from its Beta posterior."""
    clicks = np.array([max(0.0, float(exposure.get(i, (0, 0))[0])) for i in ids])
    shown = np.array([max(0.0, float(exposure.get(i, (0, 0))[1])) for i in ids])
    misses = np.maximum(shown - clicks, 0.0)
    return rng.beta(prior[0] + clicks, prior[1] + misses) if len(ids) else np.zeros(0)


def explore(
    items: Sequence[ScoredItem],
    exposure: Exposure | None = None,
    *,
    share: float = DEFAULT_EXPLORE_SHARE,
    page_size: int = 10,
    depth: int | None = None,
    prior: tuple[float, float] = DEFAULT_PRIOR,
    eligible: Callable[[str], bool] | None = None,
    max_impressions: float = DEFAULT_MAX_IMPRESSIONS,
    rng: np.random.Generator | int | None = None,
    copy: bool = True,
) -> list[ScoredItem]:
    """Items with exploration slots of the first page filled by Thompson sampling.

    Candidates are the items at places ``page_size`` to ``depth`` (default: the end) that are
    ``eligible`` (default: shown fewer than ``max_impressions`` times). The winners move up into the
    slots with ``parts["explore"]`` (their draw) and the reason ``"new: exploring"``; everything else
    keeps its order. ``rng`` is a generator or a seed; None draws fresh randomness. ``copy=False``: the caller
    owns ``items`` (each id once), and the winners get their parts and reason in place.
    """
    check_share(share)
    check_prior(prior)
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    if copy:
        check_unique(items)
    out = fresh(items) if copy else list(items)
    positions = explore_positions(share, page_size)
    if not positions:
        return out
    exposure = exposure or {}
    if eligible is None:
        def eligible(item_id: str) -> bool:
            return float(exposure.get(item_id, (0, 0))[1]) < max_impressions

    stop = len(out) if depth is None else min(depth, len(out))
    candidates = [item for item in out[page_size:stop] if eligible(item.id)]
    if not candidates:
        return out
    draws = thompson_draws([item.id for item in candidates], exposure, prior, np.random.default_rng(rng))
    order = np.argsort(-draws, kind="stable")[: len(positions)]  # best draws first
    winners = [candidates[i] for i in order]
    for item, draw in zip(winners, draws[order], strict=True):
        item.parts["explore"] = float(draw)
        add_reason(item, EXPLORE_REASON)
    chosen = {item.id for item in winners}
    result = [item for item in out if item.id not in chosen]
    for position, item in zip(positions, winners, strict=False):
        result.insert(min(position, len(result)), item)
    return result


def exposure_from_events(
    events: Iterable[Event],
    *,
    shown: Iterable[str] | None = None,
    positive: Iterable[str] = ("click", "add_to_cart", "purchase"),
) -> dict[str, tuple[int, int]]:
    """A stand-in for impression logs: per item, (positive events, events of the ``shown`` types).

    ``shown`` defaults to every event type, so an item's "impressions" are all its events. Types in
    ``positive`` also count as shown, so clicks never exceed impressions.
    """
    positive = set(positive)
    shown_types = None if shown is None else set(shown) | positive
    counts: dict[str, list[int]] = {}
    for event in events:
        if shown_types is not None and event.type not in shown_types:
            continue
        tally = counts.setdefault(event.item_id, [0, 0])
        tally[1] += 1
        if event.type in positive:
            tally[0] += 1
    return {item_id: (c, n) for item_id, (c, n) in counts.items()}
