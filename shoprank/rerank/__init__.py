"""The re-ranking stage: business rules, diversity and exploration after the ranker.

Shared by search and recommendations. A re-ranker only reorders and filters the items it is given,
and every item it moves says why (``ScoredItem.reasons``). See ``docs/reranking.md``.
"""

from __future__ import annotations

from shoprank.rerank.diversity import (
    DEFAULT_DIVERSITY,
    VARIETY_REASON,
    cap_categories,
    category_cap_for,
    diversify,
    mmr,
)
from shoprank.rerank.explore import (
    DEFAULT_EXPLORE_SHARE,
    EXPLORE_REASON,
    MAX_EXPLORE_SHARE,
    explore,
    exposure_from_events,
)
from shoprank.rerank.pipeline import RerankConfig, Reranker, load_config, rerank, save_config
from shoprank.rerank.rules import Pin, Rule, RuleError, RuleSet, load_rules, normalise_query, place_pins, save_rules

__all__ = [
    "DEFAULT_DIVERSITY",
    "DEFAULT_EXPLORE_SHARE",
    "EXPLORE_REASON",
    "MAX_EXPLORE_SHARE",
    "VARIETY_REASON",
    "Pin",
    "RerankConfig",
    "Reranker",
    "Rule",
    "RuleError",
    "RuleSet",
    "cap_categories",
    "category_cap_for",
    "diversify",
    "explore",
    "exposure_from_events",
    "load_config",
    "load_rules",
    "mmr",
    "normalise_query",
    "place_pins",
    "rerank",
    "save_config",
    "save_rules",
]
