"""Keep a server's baseline bundles current, in one background thread.

* A shop with products and no bundle of a kind gets a baseline one synchronously when the server opens the
  kind (lexical search, trending + hashing-text recommendations): its first answer needs nothing else.
* Then, in the background, the catalogue is embedded with the untuned base encoder (progress in
  ``/admin/status`` under ``baseline``, and in ``cache/baseline-progress.json`` for any other process), and
  hybrid search and encoder-based text similarity are published and swapped in.
* While recommendations are served by a baseline, new events (at least ``refresh_events`` since the bundle,
  at most once per ``refresh_seconds`` and never more often than ten times the last rebuild took, so a large
  log costs the server at most a tenth of a core) republish it with fresh trending and item-to-item tables; a
  shop without events is not republished. Older baseline bundles are removed as new ones are published
  (``KEEP_BASELINES`` kept).

One builder per shop across processes: the embedding job holds an exclusive ``flock`` on
``cache/baseline.lock``; a server that finds it taken (``shoprank baseline`` running, another replica) leaves the
job to that process and reports its progress file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shoprank.baseline.build import (
    _snapshot,
    embed_catalogue,
    is_baseline,
    publish_recommend,
    publish_search,
    shop_language,
)
from shoprank.shops import Shop

log = logging.getLogger("shoprank.baseline")

PROGRESS_FILE = "baseline-progress.json"
LOCK_FILE = "baseline.lock"
SYNC_NEIGHBOURS_MAX_EVENTS = 50_000
"""A first recommend baseline builds its item-to-item tables at once up to this many events; above, it starts
with trending alone and the tables follow from the background."""


def progress_path(shop: Shop) -> Path:
    return shop.path / "cache" / PROGRESS_FILE


def write_progress(shop: Shop, info: dict[str, Any]) -> None:
    path = progress_path(shop)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{PROGRESS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


def read_progress(shop: Shop) -> dict[str, Any] | None:
    try:
        return json.loads(progress_path(shop).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def builder_lock(shop: Shop) -> Iterator[bool]:
    """Yields True when this process may build the shop's embeddings (no other holds the lock)."""
    path = shop.path / "cache" / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def embed_and_publish(shop: Shop, on_progress: Any = None, ray: Any = None) -> dict[str, Any]:
    """Embed the catalogue with the base encoder, then publish hybrid search and recommend baselines (each only
    while no trained bundle serves). Reports progress to ``on_progress(info)`` and the progress file; ``ray``: a
    :class:`~shoprank.cluster.RayConfig` to embed on."""
    products, version = _snapshot(shop)
    began = time.time()
    info: dict[str, Any] = {"stage": "embedding", "done": 0, "total": len(products), "started": began,
                            "pid": os.getpid()}

    def report(done: int, total: int) -> None:
        info.update(done=done, total=total, updated=time.time())
        elapsed = time.time() - began
        info["eta_seconds"] = round(elapsed / done * (total - done), 1) if done else None
        write_progress(shop, info)
        if on_progress is not None:
            on_progress(dict(info))

    report(0, len(products))
    vectors = embed_catalogue(products, shop_language(products), report, ray=ray)
    info["stage"] = "publishing"
    write_progress(shop, info)
    search_version, _ = publish_search(shop, vectors, (products, version))
    recommend_version = publish_recommend(shop, vectors, [p.id for p in products], encoder="default")
    info.update(stage="done", search=search_version, recommend=recommend_version,
                seconds=round(time.time() - began, 1), eta_seconds=0)
    write_progress(shop, info)
    if on_progress is not None:
        on_progress(dict(info))
    return info


class BaselineWorker:
    """The baseline side of an :class:`~shoprank.serving.registry.EngineRegistry`."""

    def __init__(self, registry: Any, *, embed: bool = True, refresh_events: int = 20,
                 refresh_seconds: float = 30.0) -> None:
        self.registry = registry
        self.embed = embed
        """Compute the base encoder's embeddings in the background (off: stay lexical until trained)."""
        self.refresh_events = refresh_events
        self.refresh_seconds = refresh_seconds
        self.progress: dict[str, dict[str, Any]] = {}
        self._jobs: queue.Queue[tuple[str, str]] = queue.Queue()
        self._queued: set[tuple[str, str]] = set()
        self._done_embedding: set[str] = set()
        self._last_refresh: dict[str, float] = {}
        self._refresh_took: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # the first bundle, synchronously --------------------------------------------------------------
    def ensure(self, shop: Shop, kind: str, snapshot: tuple[list[Any], int] | None = None) -> tuple[str | None, Any]:
        """Publish the first baseline bundle of ``kind`` for a shop that has products: (its version, the engine
        built in memory on the way, or None when the bundle is to be loaded as usual). ``snapshot``: (products,
        catalogue version) the caller read already (search only)."""
        with shop.store(create=False) as store:
            products = store.product_count() > 0
            events = store.event_count() if products else 0
        if not products:
            return None, None
        if kind == "search":
            from shoprank.search.engine import SearchEngine

            snapshot = snapshot or _snapshot(shop)
            version, stack = publish_search(shop, snapshot=snapshot)
            if version is None:
                return None, None
            if self.embed:
                self.schedule(shop.name, "embed")
            return version, SearchEngine(stack, version, snapshot[1], shop)
        quick = events > SYNC_NEIGHBOURS_MAX_EVENTS
        version = publish_recommend(shop, neighbours=not quick)
        if quick:
            self.schedule(shop.name, "refresh")
        return version, None

    # background jobs -------------------------------------------------------------------------------
    def schedule(self, shop: str, job: str) -> None:
        with self._lock:
            if (shop, job) in self._queued:
                return
            self._queued.add((shop, job))
            self._jobs.put((shop, job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shoprank-baseline", daemon=True)
                self._thread.start()

    def tick(self) -> None:
        """One watcher tick: schedule what the open shops' baselines need."""
        for state in self.registry.loaded():
            search = state.slots["search"].engine
            if self.embed and search is not None and is_baseline(getattr(search, "version", None)) and \
                    getattr(search.stack, "lexical_only", False) and state.name not in self._done_embedding:
                self.schedule(state.name, "embed")
            rec = state.slots["recommend"].engine
            if rec is None or not getattr(rec, "is_baseline", False):
                continue
            seen = int(rec.art.params.get("log", {}).get("events", 0))
            wait = max(self.refresh_seconds, 10 * self._refresh_took.get(state.name, 0.0))
            if time.time() - self._last_refresh.get(state.name, 0.0) < wait:
                continue
            tables_due = seen > 0 and not rec.art.params.get("neighbours", True)  # a quick first bundle's tables
            if state.store.event_count() - seen >= self.refresh_events or tables_due:
                self.schedule(state.name, "refresh")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                shop, job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if job == "embed":
                    self._embed(shop)
                elif job.startswith("fill:"):
                    self.registry.fill_missing(self.registry.get(shop), job.split(":", 1)[1])
                else:
                    self._refresh(shop)
            except Exception as exc:  # a failed job leaves the current bundles serving
                log.exception("shop %s: baseline %s failed", shop, job)
                self.progress[shop] = {**self.progress.get(shop, {}), "stage": "failed", "error": str(exc)[:300]}
            finally:
                with self._lock:
                    self._queued.discard((shop, job))

    def _embed(self, name: str) -> None:
        shop = Shop(name, self.registry.home)
        with builder_lock(shop) as mine:
            if not mine:
                log.info("shop %s: another process is embedding the catalogue; leaving it to it", name)
                return
            self._done_embedding.add(name)

            def on_progress(info: dict[str, Any]) -> None:
                self.progress[name] = info

            info = embed_and_publish(shop, on_progress)
        kinds = tuple(k for k in ("search", "recommend") if info.get(k))
        if kinds:
            self.registry.reload(name, kinds)

    def _refresh(self, name: str) -> None:
        shop = Shop(name, self.registry.home)
        self._last_refresh[name] = time.time()
        state = self.registry.get(name)
        rec = state.slots["recommend"].engine
        vectors = ids = None
        encoder = None
        if rec is not None and getattr(rec, "is_baseline", False):
            encoder = rec.art.params.get("encoder")
            vectors, ids = rec.art.text_vectors[1:], list(rec.catalogue.ids)
        began = time.perf_counter()
        version = publish_recommend(shop, vectors, ids, encoder=encoder)
        self._refresh_took[name] = time.perf_counter() - began
        if version is not None:
            self.registry.reload(name, ("recommend",))

    def status(self, shop: Shop) -> dict[str, Any] | None:
        """What the shop's baseline builder is doing: this process's job, else another process's file."""
        return self.progress.get(shop.name) or read_progress(shop)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
