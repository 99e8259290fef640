"""The re-ranking stage of online answers: the shop's business rules, diversity and exploration.

Each shop holds one :class:`ShopReranking`. It reads the shop's stored settings and rules and builds a
:class:`~shoprank.rerank.Reranker`; a change made through the API takes effect on the next request, one
made by ``shoprank rules`` (another process) on the next watcher tick. Engines over-fetch
(:data:`OVER_FETCH` × the page) so diversity and hidden items leave a full page.

"For you" gets the whole stage; "similar items" and "bought together" get the rules only (diversity
would work against "similar"). Exploration, when a shop turns it on, is seeded per query or user and
five-minute window, so the pages of one result list agree with each other.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shoprank.data.records import Product
from shoprank.rerank import Reranker, RuleSet, exposure_from_events, load_config, load_rules
from shoprank.rerank.context import recommend_vectors, search_context
from shoprank.rerank.pipeline import SETTING_KEY as CONFIG_KEY
from shoprank.rerank.pipeline import Vectors
from shoprank.rerank.rules import SETTING_KEY as RULES_KEY
from shoprank.results import ScoredItem, SearchFilters
from shoprank.store.base import Store

log = logging.getLogger("shoprank.serving")

OVER_FETCH = 3
"""Candidates fetched per place shown when the shop re-ranks."""
SEED_WINDOW_S = 300.0


class ShopReranking:
    """A shop's current re-ranker, rebuilt when its stored settings or rules change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._raw: tuple[Any, Any] | None = None
        self.reranker = Reranker()
        self.error: str | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the stored settings and rules; True when they changed. Bad stored ones keep the last good."""
        with self._lock:
            raw = (self.store.get_setting(CONFIG_KEY), self.store.get_setting(RULES_KEY))
            if raw == self._raw:
                return False
            try:
                config = load_config(self.store)
                rules = load_rules(self.store)
            except ValueError as exc:
                self.error = str(exc)
                log.error("re-ranking settings refused, the previous ones stay: %s", exc)
                self._raw = raw
                return False
            exposure = exposure_from_events(self.store.iter_events()) if config.explore_share > 0 else None
            self.reranker = Reranker(config, rules, exposure)  # replaced whole: readers hold the old one
            self.error = None
            self._raw = raw
            return True

    def for_request(self, diversity: float | None = None, *, page_size: int | None = None,
                    rules_only: bool = False) -> Reranker | None:
        """The re-ranker for one request, or None when it would change nothing.

        ``diversity`` overrides λ; ``page_size`` is the page the answer shows (the category cap and the
        "added for variety" reasons are about it)."""
        current = self.reranker
        config = current.config
        if page_size is not None and page_size != config.page_size:
            config = replace(config, page_size=page_size, depth=max(config.depth, page_size))
        if rules_only:
            config = replace(config, diversity=0.0, explore_share=0.0)
        elif diversity is not None:
            config = replace(config, diversity=diversity)
        if config.diversity == 0 and config.explore_share == 0 and current.rules == RuleSet(hide_out_of_stock=False):
            return None
        if config == current.config:
            return current
        return Reranker(config, current.rules, current.exposure)


def request_seed(*parts: str | None) -> int:
    """A seed that stays the same for one query or user within a five-minute window."""
    window = int(time.time() // SEED_WINDOW_S)
    return zlib.crc32("\x1f".join(p or "" for p in (*parts, str(window))).encode("utf-8"))


def context(engine: Any, store: Store, ids: Sequence[str]) -> tuple[dict[str, Product], Vectors | None]:
    """The candidates' products and text vectors, from the engine where it holds them, else the store."""
    stack = getattr(engine, "stack", None)
    if stack is not None and hasattr(stack, "catalog"):
        return search_context(stack, ids)
    products = {p.id: p for p in store.get_products(list(ids)) if p is not None}
    vectors = recommend_vectors(engine) if hasattr(engine, "art") and hasattr(engine, "catalogue") else None
    return products, vectors


def apply(
    reranker: Reranker,
    engine: Any,
    store: Store,
    items: list[ScoredItem],
    *,
    query: str | None = None,
    filters: SearchFilters | None = None,
    seed: int | None = None,
) -> list[ScoredItem]:
    """``items`` re-ranked (a subset, reordered, with reasons for what moved)."""
    if not items:
        return items
    products, vectors = context(engine, store, [item.id for item in items])
    return reranker.rerank(items, products, vectors, query, filters=filters, rng=seed)
