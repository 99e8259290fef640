"""Recommendations: a SASRec sequence model over the shop's events, item-to-item tables, peers.

Importing this package loads no model: ``Recommender.load(shop)`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Recommender", "SASRec", "SASRecConfig", "train_recommender"]

if TYPE_CHECKING:
    from shoprank.recommend.pipeline import train_recommender
    from shoprank.recommend.sasrec import SASRec, SASRecConfig
    from shoprank.recommend.service import Recommender

_WHERE = {
    "Recommender": "shoprank.recommend.service",
    "SASRec": "shoprank.recommend.sasrec",
    "SASRecConfig": "shoprank.recommend.sasrec",
    "train_recommender": "shoprank.recommend.pipeline",
}


def __getattr__(name: str) -> Any:  # lazy: importing shoprank.recommend costs nothing (no torch)
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'shoprank.recommend' has no attribute {name!r}")
