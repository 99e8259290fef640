"""Record every answer's impression off the request path: a bounded queue and one writer thread.

``ImpressionLog.record`` only appends to an in-memory queue (never blocks: when the queue holds
``capacity`` impressions, the new one is dropped and counted as ``impressions_dropped``). The writer takes up
to ``batch`` impressions at a time, at least every ``flush_seconds``, and writes them per shop in one
transaction on its own store connection, so a slow, locked or full store delays nobody's answer. A write that
fails drops its batch (counted as ``impressions_failed``). What a kill -9 loses is bounded: the queue
(at most ``capacity``) and the batch being written; acknowledged events are written by their own request and
never wait for this.

Recently recorded impressions are also kept in memory (``recent``, by shop and request id) so that a click
arriving before its impression was flushed is still attributed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from shoprank.data.impressions import Impression
from shoprank.store.base import Store

log = logging.getLogger("shoprank.serving")

RECENT = 50_000  # impressions kept in memory for attribution
RETENTION_EVERY = 3600.0  # seconds between two retention sweeps


class ImpressionLog:
    """The server's impression writer. ``open_store(shop)`` gives the store the writer uses for a shop."""

    def __init__(self, open_store: Callable[[str], Store], count: Callable[[str, int], None], *,
                 capacity: int = 10_000, batch: int = 500, flush_seconds: float = 0.2,
                 retention_days: float = 90.0, shops: Callable[[], list[str]] | None = None) -> None:
        self._open_store = open_store
        self._count = count
        self.capacity = capacity
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.retention_days = retention_days
        self._shops = shops
        self._queue: deque[tuple[str, Impression]] = deque()
        self._recent: OrderedDict[tuple[str, str], Impression] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stores: dict[str, Store] = {}
        self._thread: threading.Thread | None = None
        self._stop = False
        self._last_sweep = 0.0
        self.written = 0
        self.dropped = 0
        self.writing = 0
        """Impressions taken from the queue and not yet written (the batch in flight)."""

    def start(self) -> None:
        """Start the writer now (it also starts with the first impression); it sweeps retention at once."""
        with self._lock:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._run, name="shoprank-impressions", daemon=True)
                self._thread.start()

    # the request side --------------------------------------------------------------------------
    def record(self, shop: str, impression: Impression) -> bool:
        """Queue ``impression``; False (and counted) when the queue is full. Never blocks on the store."""
        with self._lock:
            if len(self._queue) >= self.capacity:
                self.dropped += 1
                dropped = True
            else:
                self._queue.append((shop, impression))
                self._recent[(shop, impression.request_id)] = impression
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
                dropped = False
                if len(self._queue) >= self.batch:
                    self._wake.notify()
        if self._thread is None:
            self.start()
        self._count("impressions_dropped" if dropped else "impressions_queued", 1)
        return not dropped

    def lookup(self, shop: str, request_ids: list[str], store: Store | None = None) -> dict[str, Impression]:
        """The impressions of ``request_ids`` for ``shop``: from memory when recent, else from ``store`` (default:
        the writer's)."""
        found: dict[str, Impression] = {}
        with self._lock:
            for rid in request_ids:
                imp = self._recent.get((shop, rid))
                if imp is not None:
                    found[rid] = imp
        rest = [rid for rid in request_ids if rid not in found]
        if rest:
            found.update((store or self._store(shop)).get_impressions(rest))
        return found

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self.writing

    # the writer -------------------------------------------------------------------------------
    def _store(self, shop: str) -> Store:
        store = self._stores.get(shop)
        if store is None:
            store = self._stores[shop] = self._open_store(shop)
        return store

    def _take(self) -> list[tuple[str, Impression]]:
        with self._lock:
            if not self._queue and not self._stop:
                self._wake.wait(self.flush_seconds)
            if len(self._queue) < self.batch and not self._stop:
                self._wake.wait_for(lambda: len(self._queue) >= self.batch or self._stop, self.flush_seconds)
            n = min(self.batch, len(self._queue))
            taken = [self._queue.popleft() for _ in range(n)]
            self.writing = n
            return taken

    def _run(self) -> None:
        self._sweep()
        while True:
            taken = self._take()
            if taken:
                self._write(taken)
            with self._lock:
                self.writing = 0
                if self._stop and not self._queue:
                    return
            self._sweep()

    def _write(self, taken: list[tuple[str, Impression]]) -> None:
        by_shop: dict[str, list[Impression]] = {}
        for shop, imp in taken:
            by_shop.setdefault(shop, []).append(imp)
        for shop, imps in by_shop.items():
            try:
                result = self._store(shop).append_impressions(imps)
            except Exception as exc:  # the answers were given already; only the log loses these
                log.warning("shop %s: %d impressions could not be written: %s", shop, len(imps), exc)
                self._count("impressions_failed", len(imps))
                continue
            self.written += result.stored
            self._count("impressions_written", result.stored)

    def _sweep(self) -> None:
        """Retention: delete impressions older than ``retention_days`` of every shop, at most hourly."""
        if self.retention_days <= 0 or self._shops is None or time.time() - self._last_sweep < RETENTION_EVERY:
            return
        self._last_sweep = time.time()
        cutoff = time.time() - self.retention_days * 86_400
        for shop in self._shops():
            try:
                removed = self._store(shop).delete_impressions_before(cutoff)
            except Exception as exc:
                log.warning("shop %s: impression retention failed: %s", shop, exc)
                continue
            if removed:
                log.info("shop %s: %d impressions older than %g days deleted", shop, removed, self.retention_days)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or ``timeout``); True when it was."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._wake.notify()
        while time.monotonic() < deadline:
            if self.pending == 0:
                return True
            with self._lock:
                self._wake.notify()
            time.sleep(0.01)
        return self.pending == 0

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout``), then stop and close the writer's stores."""
        with self._lock:
            self._stop = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        for store in self._stores.values():
            try:
                store.close()
            except Exception:
                pass
        self._stores.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"queued": len(self._queue), "writing": self.writing, "capacity": self.capacity,
                    "written": self.written, "dropped": self.dropped, "retention_days": self.retention_days}


def new_request_id() -> str:
    import uuid

    return uuid.uuid4().hex


def record_answer(request: Any, shop: str, surface: str, ids: list[str], *, offset: int = 0, page: int = 1,
                  query: str | None = None, user_id: str | None = None, item_id: str | None = None,
                  model_version: str | None = None, request_id: str | None = None, total: int | None = None,
                  latency_ms: float | None = None, experiment: str | None = None, variant: str | None = None,
                  teams: list[str] | None = None) -> str:
    """Queue the impression of an answer; returns its request id (a new one unless given). An empty answer is
    recorded only for search (so zero-result queries show in analytics)."""
    request_id = request_id or new_request_id()
    impressions: ImpressionLog | None = getattr(request.app.state, "impressions", None)
    if impressions is not None and (ids or surface == "search"):
        impressions.record(shop, Impression(
            request_id=request_id, timestamp=time.time(), surface=surface, items=tuple(ids),
            positions=tuple(range(offset, offset + len(ids))), user_id=user_id, query=query or None,
            item_id=item_id, model_version=model_version, page=page, total=total,
            latency_ms=None if latency_ms is None else round(latency_ms, 3), experiment=experiment,
            variant=variant, teams=tuple(teams) if teams is not None else None))
    return request_id
