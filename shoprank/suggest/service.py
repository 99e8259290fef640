"""A shop's suggestion index as it stands: built on first use, rebuilt (in the background, the old one
answering meanwhile) when the catalogue changed or ``refresh_seconds`` passed, so new queries show."""

from __future__ import annotations

import logging
import threading
import time

from shoprank.store.base import Store
from shoprank.suggest.index import SuggestConfig, SuggestIndex, build_index

log = logging.getLogger("shoprank.suggest")

LOG_DAYS = 90.0
"""How far back logged queries count."""


class ShopSuggestions:
    def __init__(self, store: Store, config: SuggestConfig | None = None, refresh_seconds: float = 300.0) -> None:
        self.store = store
        self.config = config or SuggestConfig()
        self.refresh_seconds = refresh_seconds
        self._index: SuggestIndex | None = None
        self._built_at = 0.0
        self._version = -1
        self._lock = threading.Lock()
        self._building = False

    def _build(self) -> None:
        version = self.store.catalog_version()
        now = time.time()
        try:
            outcomes = list(self.store.impression_outcomes(since=now - LOG_DAYS * 86_400, surfaces=["search"]))
        except NotImplementedError:
            outcomes = []
        index = build_index(self.store.iter_products(), outcomes, self.config, now)
        with self._lock:
            self._index, self._built_at, self._version = index, time.monotonic(), version

    def _background(self) -> None:
        try:
            self._build()
        except Exception as exc:  # the old index keeps answering
            log.warning("suggestion index rebuild failed: %s", exc)
        finally:
            with self._lock:
                self._building = False

    def index(self) -> SuggestIndex:
        if self._index is None:
            self._build()
        assert self._index is not None
        stale = (time.monotonic() - self._built_at > self.refresh_seconds
                 or self.store.catalog_version() != self._version)
        if stale:
            with self._lock:
                start = not self._building
                self._building = True
            if start:
                threading.Thread(target=self._background, name="shoprank-suggest", daemon=True).start()
        return self._index

    def refresh_now(self) -> None:
        """Rebuild at once (tests, the CLI)."""
        self._build()
