"""Ranking: features of (query, product) pairs and the LambdaMART fusion ranker."""

from __future__ import annotations

from shoprank.ranking.features import FEATURES, ItemStats, compute_features
from shoprank.ranking.fusion import FusionConfig, FusionRanker

__all__ = ["FEATURES", "FusionConfig", "FusionRanker", "ItemStats", "compute_features"]
