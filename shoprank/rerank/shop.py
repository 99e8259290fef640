"""A shop's re-ranking stage as it stands now: its business rules, diversity and exploration settings.

Each shop holds one :class:`ShopReranking`. It reads the shop's stored settings and rules and builds a
:class:`~shoprank.rerank.Reranker`; a change made through the API takes effect on the next request, one
made by ``shoprank rules`` (another process) on the next watcher tick (the server), or on the next load
(batch runs). The cascade (:mod:`shoprank.cascade`) over-fetches so diversity and hidden items leave a
full page.

"For you" gets the whole stage; "similar items" and "bought together" get the rules only (diversity
would work against "similar"). Exploration, when a shop turns it on, is seeded per query or user and
five-minute window, so the pages of one result list agree with each other.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from dataclasses import replace
from typing import Any

from shoprank.rerank.explore import exposure_from_events
from shoprank.rerank.pipeline import SETTING_KEY as CONFIG_KEY
from shoprank.rerank.pipeline import Reranker, load_config
from shoprank.rerank.rules import SETTING_KEY as RULES_KEY
from shoprank.rerank.rules import RuleSet, load_rules
from shoprank.store.base import Store

log = logging.getLogger("shoprank.rerank")

SEED_WINDOW_S = 300.0
SEED_WINDOW_ENV = "SHOPRANK_SEED_WINDOW"  # a whole number pins the window: randomised answers repeat across runs


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
                    rules_only: bool = False, explore: bool = True) -> Reranker | None:
        """The re-ranker for one request, or None when it would change nothing.

        ``diversity`` overrides λ; ``page_size`` is the page the answer shows (the category cap and the
        "added for variety" reasons are about it); ``explore=False`` turns exploration and randomisation off (batch
        runs and evaluation, which must repeat)."""
        current = self.reranker
        config = current.config
        if page_size is not None and page_size != config.page_size:
            config = replace(config, page_size=page_size, depth=max(config.depth, page_size))
        if rules_only:
            config = replace(config, diversity=0.0, explore_share=0.0, randomise=0.0)
        elif diversity is not None:
            config = replace(config, diversity=diversity)
        if not explore and (config.explore_share > 0 or config.randomise > 0):
            config = replace(config, explore_share=0.0, randomise=0.0)
        plain = config.diversity == 0 and config.explore_share == 0 and config.randomise == 0
        if plain and current.rules == RuleSet(hide_out_of_stock=False):
            return None
        if config == current.config:
            return current
        return Reranker(config, current.rules, current.exposure)


def pinned_seed_window() -> int | None:
    """``$SHOPRANK_SEED_WINDOW`` as a window number (benchmarks and tests that must repeat), None when unset."""
    raw = os.environ.get(SEED_WINDOW_ENV, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"${SEED_WINDOW_ENV} must be a whole number (a fixed seed window), got {raw!r}") from None


def request_seed(*parts: str | None) -> int:
    """A seed that stays the same for one query or user within a five-minute window (or for good, when
    ``$SHOPRANK_SEED_WINDOW`` pins the window)."""
    pinned = pinned_seed_window()
    window = int(time.time() // SEED_WINDOW_S) if pinned is None else pinned
    return zlib.crc32("\x1f".join(p or "" for p in (*parts, str(window))).encode("utf-8"))
