"""Loading a shop's cascade the way the server does, so batch runs, CLI queries and evaluation answer as it does.

The search engine embeds queries with the bundle's int8 ONNX query tower (what the server serves) and expands
them with the shop's synonyms; the re-ranking stage reads the shop's stored rules and settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shoprank.cascade.cascade import Cascade


class EngineUnavailable(RuntimeError):
    """The engine code itself cannot be imported (not installed)."""


def load_search(shop: Any, *, use_cross_encoder: bool = False) -> Any:
    """The shop's latest search bundle as served. Raises BundleError when there is none."""
    try:
        from shoprank.search import SearchEngine
    except ImportError as exc:
        raise EngineUnavailable(f"the search engine cannot be imported ({exc})") from None
    return SearchEngine.load(shop, use_cross_encoder=use_cross_encoder, onnx_queries=True)


def load_recommender(shop: Any) -> Any:
    """The shop's latest recommend bundle as served. Raises BundleError when there is none."""
    try:
        from shoprank.recommend import Recommender
    except ImportError as exc:
        raise EngineUnavailable(f"the recommender cannot be imported ({exc})") from None
    return Recommender.load(shop)


def load_cascade(shop: Any, surfaces: Iterable[str] = ("search", "recommend"), *,
                 use_cross_encoder: bool = False) -> Cascade:
    """The shop's cascade with the engines ``surfaces`` need ("search"; "recommend" also serves "similar" and
    "bought_together"), its store and its re-ranking stage. Raises BundleError when a needed bundle is missing."""
    from shoprank.rerank.shop import ShopReranking

    wanted = set(surfaces)
    store = shop.store(create=False)
    search = load_search(shop, use_cross_encoder=use_cross_encoder) if "search" in wanted else None
    if search is not None:  # the shop's synonyms, as the server applies them
        from shoprank.synonyms import load_synonyms

        synonyms = load_synonyms(store)
        if synonyms:
            from shoprank.synonyms.engine import WithSynonyms

            search = WithSynonyms(search, synonyms)
    recommend = load_recommender(shop) if wanted & {"recommend", "similar", "bought_together"} else None
    return Cascade(search=search, recommend=recommend, reranking=ShopReranking(store), store=store)
