"""The engines each shop serves: loaded lazily, cached, swapped atomically on reload.

A request takes a reference to the engine it needs once (``state.search.engine``) and uses it to the end,
so a reload that swaps the reference lets in-flight requests finish on the old engine. A bundle that fails
to load (corrupt, truncated, wrong format) is refused and the last good engine keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprank.bundles import latest_version, open_bundle, remove_stale_staging
from shoprank.serving.catalog import Catalog
from shoprank.shops import Shop, check_shop_name, list_shops
from shoprank.store import Store

log = logging.getLogger("shoprank.serving")

KINDS = ("search", "recommend")
Loader = Callable[..., Any]
"""``loader(shop)`` loads the latest bundle's engine, ``loader(shop, version)`` that version's (experiments)."""


class ShopNotFound(LookupError):
    pass


class EngineUnavailable(RuntimeError):
    """The engine code itself cannot be imported (not installed)."""


def check_engine(shop: Shop, kind: str, version: str | None = None) -> None:
    """Refuse a bundle that names an engine other than shoprank's own (a bundle written by something else)."""
    engine = open_bundle(shop.models_path, kind, version, verify=False).params.get("engine")
    if engine is not None:
        raise ValueError(f"the {kind} bundle of shop '{shop.name}' names engine {engine!r}, which this server does "
                         f"not have (shoprank's bundles name none); publish one with 'shoprank train {kind} "
                         f"--shop {shop.name}'")


def load_search(shop: Shop, version: str | None = None) -> Any:
    """The shop's search engine: its LATEST bundle, or ``version`` (an experiment's variant)."""
    check_engine(shop, "search", version)
    try:
        from shoprank.search import SearchEngine
    except ImportError as exc:
        raise EngineUnavailable(f"the search engine cannot be imported ({exc})") from None
    return SearchEngine.load(shop, version, onnx_queries=True)


def load_recommender(shop: Shop, version: str | None = None) -> Any:
    """The shop's recommender: its LATEST bundle, or ``version`` (an experiment's variant)."""
    check_engine(shop, "recommend", version)
    try:
        from shoprank.recommend import Recommender
    except ImportError as exc:
        raise EngineUnavailable(f"the recommender cannot be imported ({exc})") from None
    return Recommender.load(shop, version)


DEFAULT_LOADERS: dict[str, Loader] = {"search": load_search, "recommend": load_recommender}


@dataclass(frozen=True)
class Slot:
    """One engine of one shop as it is served now. Replaced whole, never changed in place."""

    kind: str
    engine: Any | None = None
    version: str | None = None
    state: str = "missing"  # ready | missing | failed
    error: str | None = None
    failed_version: str | None = None
    loaded_at: float | None = None

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "version": self.version, "error": self.error,
                "failed_version": self.failed_version, "loaded_at": self.loaded_at}


@dataclass
class ShopState:
    shop: Shop
    store: Store
    catalog: Catalog
    slots: dict[str, Slot] = field(default_factory=dict)
    rerank: Any = None
    """The shop's :class:`~shoprank.rerank.shop.ShopReranking` (rules and re-ranking settings)."""
    variants: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(kind, version) -> the engine of another bundle version a running experiment's variant serves; catalogue
    writes reach these as they reach the served engines (:func:`apply_to_engines`)."""
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by writes (store + engine update) and by the final step of a swap, never by reads."""
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    fill_locks: dict[str, threading.Lock] = field(default_factory=lambda: {k: threading.Lock() for k in KINDS})
    """Held while a missing kind's baseline is built (one build per kind; search never waits for recommend)."""
    on_missing: Callable[[str], Slot] | None = None
    """Called by a request that finds a kind missing: builds the shop's baseline bundle if it has products now."""
    first_snapshot: tuple[list[Any], int] | None = None
    """(products, catalogue version) read when the shop was opened without a search bundle: the baseline build
    uses them while the catalogue is still at that version, instead of reading every product again."""

    @property
    def name(self) -> str:
        return self.shop.name


class EngineRegistry:
    """Every shop of a home folder this process has opened, with its store, catalogue view and engines."""

    def __init__(self, home: str | Path, loaders: dict[str, Loader] | None = None, *, engine_concurrency: int = 2,
                 engine_threads: int = 0, engine_queue_seconds: float | None = None, baseline: bool = True,
                 baseline_embed: bool = True) -> None:
        self.home = Path(home)
        self.engine_gate = threading.BoundedSemaphore(engine_concurrency)
        """Held around every engine call: at most ``engine_concurrency`` run at once."""
        self.engine_queue_seconds = engine_queue_seconds
        """How long a call may wait for the gate before it is refused (None: as long as it takes)."""
        self.engine_threads = engine_threads
        self.loaders = {**DEFAULT_LOADERS, **(loaders or {})}
        self._shops: dict[str, ShopState] = {}
        self._lock = threading.Lock()
        self._opening: dict[str, threading.Lock] = {}
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.baseline: Any = None
        """The :class:`~shoprank.baseline.BaselineWorker`: a shop without a bundle of a kind serves a baseline."""
        if baseline:
            from shoprank.baseline import BaselineWorker

            self.baseline = BaselineWorker(self, embed=baseline_embed)

    # opening ------------------------------------------------------------------------------
    def shop_names(self) -> list[str]:
        return [s.name for s in list_shops(self.home)]

    def is_open(self, name: str) -> bool:
        return name in self._shops

    def loaded(self) -> list[ShopState]:
        return list(self._shops.values())

    def get(self, name: str) -> ShopState:
        """The shop's state, opening the shop and loading its engines on first use."""
        state = self._shops.get(name)
        if state is not None:
            return state
        check_shop_name(name)
        with self._lock:
            opening = self._opening.setdefault(name, threading.Lock())
        with opening:  # one thread opens a shop; the others wait for it
            state = self._shops.get(name)
            if state is not None:
                return state
            shop = Shop(name, self.home)
            if not shop.exists():
                raise ShopNotFound(name)
            remove_stale_staging(shop.models_path)  # what killed publishers left; live ones are spared
            store = shop.store(create=False)
            from shoprank.rerank.shop import ShopReranking

            snapshot = None
            if self.baseline is not None and latest_version(shop.models_path, "search") is None:
                products, _, version = store.products_changed_since(0)  # one read for the catalogue and the build
                snapshot = (products, version) if products else None
            state = ShopState(shop=shop, store=store, catalog=Catalog(store, snapshot), rerank=ShopReranking(store),
                              first_snapshot=snapshot)
            state.on_missing = lambda kind, state=state: self.fill_missing(state, kind)
            for kind in KINDS:  # a missing kind's baseline is built in the background, or by its first request
                state.slots[kind] = self._load(state, kind, None, build=False)
            self._shops[name] = state
            if self.baseline is not None:
                for kind, slot in state.slots.items():
                    if slot.state == "missing":
                        self.baseline.schedule(name, f"fill:{kind}")
            settle_heap()
            log.info("shop %s: %d products; %s", name, len(state.catalog),
                     ", ".join(f"{k} {s.state} {s.version or ''}".strip() for k, s in state.slots.items()))
            return state

    def load_all(self) -> None:
        """Open every shop of the home folder; then the registry is ready."""
        for name in self.shop_names():
            try:
                self.get(name)
            except Exception:
                log.exception("shop %s could not be opened", name)
        self.ready.set()
        if self.baseline is not None:  # a new shop's first search builds a baseline: its code is loaded already
            import shoprank.baseline.build
            import shoprank.search.engine  # noqa: F401

    def _load(self, state: ShopState, kind: str, previous: Slot | None, *, build: bool = True,
              snapshot: tuple[list[Any], int] | None = None) -> Slot:
        """Load the latest bundle of ``kind``; on failure keep ``previous`` (if it was serving). With no bundle,
        ``build`` publishes the baseline one now (its engine straight from memory; ``snapshot``: the products to
        build it from, read already)."""
        latest = latest_version(state.shop.models_path, kind)
        if latest is None and self.baseline is not None and build:
            try:
                latest, built = self.baseline.ensure(state.shop, kind, snapshot=snapshot)
                if built is not None:
                    if self.engine_threads:
                        limit_threads(self.engine_threads)
                    return Slot(kind, built, latest, "ready", None, None, time.time())
            except Exception as exc:  # the shop keeps answering 409 with the reason
                log.exception("shop %s: no %s baseline could be built", state.name, kind)
                return Slot(kind, state="missing", error=f"shop '{state.name}' has no {kind} model and its "
                            f"baseline could not be built ({exc}); run 'shoprank train {kind} --shop {state.name}'")
        if latest is None:
            if previous is not None and previous.engine is not None:
                return previous
            return Slot(kind, state="missing", error=f"shop '{state.name}' has no {kind} model; "
                        f"run 'shoprank train {kind} --shop {state.name}'")
        try:
            engine = self.loaders[kind](state.shop)
        except Exception as exc:  # a bundle that fails to load for any reason is refused
            log.error("shop %s: %s bundle %s refused: %s", state.name, kind, latest, exc)
            if previous is not None and previous.engine is not None:
                return Slot(kind, previous.engine, previous.version, "ready", str(exc), latest, previous.loaded_at)
            state_name = "missing" if isinstance(exc, EngineUnavailable) else "failed"
            return Slot(kind, state=state_name, error=str(exc), failed_version=latest)
        version = str(getattr(engine, "version", latest) or latest)
        if self.engine_threads:
            limit_threads(self.engine_threads)
        return Slot(kind, engine, version, "ready", None, None, time.time())

    def fill_missing(self, state: ShopState, kind: str) -> Slot:
        """A request found ``kind`` missing: load (or build the baseline of) it now if the shop has products."""
        with state.fill_locks[kind]:
            slot = state.slots[kind]
            if slot.engine is not None or slot.state != "missing" or self.baseline is None:
                return slot
            if state.store.product_count() == 0:
                return slot
            before = state.store.catalog_version()
            snapshot = state.first_snapshot if kind == "search" else None
            if kind == "search":
                state.first_snapshot = None  # used once, and only while nothing changed since it was read
            if snapshot is not None and snapshot[1] != before:
                snapshot = None
            new = self._load(state, kind, None, snapshot=snapshot)
            if new.engine is not None:
                with state.write_lock:
                    self._catch_up(state, kind, new.engine, before)
                    state.slots[kind] = new
            else:
                state.slots[kind] = new
            return new

    # reloading ----------------------------------------------------------------------------
    def reload(self, name: str, kinds: tuple[str, ...] = KINDS, *, force: bool = False) -> dict[str, Any]:
        """Load newer bundles of one shop and swap them in. Returns what happened per kind."""
        state = self.get(name)
        report: dict[str, Any] = {}
        with state.reload_lock:
            for kind in kinds:
                old = state.slots[kind]
                latest = latest_version(state.shop.models_path, kind)
                if not force and latest is not None and latest == old.version and old.state == "ready":
                    report[kind] = {"status": "unchanged", "version": old.version}
                    continue
                before = state.store.catalog_version()
                new = self._load(state, kind, old)
                if new.engine is not None and new.engine is not old.engine:
                    with state.write_lock:
                        self._catch_up(state, kind, new.engine, before)
                        state.slots[kind] = new  # the atomic swap
                    settle_heap(refreeze=True)
                    report[kind] = {"status": "reloaded", "version": new.version, "previous": old.version}
                    log.info("shop %s: %s now serves %s (was %s)", name, kind, new.version, old.version)
                else:
                    state.slots[kind] = new
                    status = "failed" if new.failed_version else new.state
                    report[kind] = {"status": status, "version": new.version, "error": new.error}
        return report

    def _catch_up(self, state: ShopState, kind: str, engine: Any, since: int) -> None:
        """Apply catalogue writes acknowledged while ``engine`` was loading."""
        catch_up(state, kind, engine, since)

    def check_for_updates(self, bundles: bool = True) -> None:
        """One watcher tick: follow the stores' change feeds of open shops; with ``bundles``, also pick up
        newly published bundles."""
        if self.baseline is not None:
            try:
                self.baseline.tick()
            except Exception:
                log.exception("baseline tick failed")
        for state in self.loaded():
            try:
                sync_shop(state)
                state.rerank.refresh()
                if not bundles:
                    continue
                for kind in KINDS:
                    slot = state.slots[kind]
                    latest = latest_version(state.shop.models_path, kind)
                    if latest is not None and latest not in (slot.version, slot.failed_version):
                        self.reload(state.name, (kind,))
            except Exception:
                log.exception("shop %s: update check failed", state.name)

    def start_watching(self, every: float, sync_every: float | None = None) -> None:
        """Look for new bundles every ``every`` seconds and follow the stores every ``sync_every`` (default: as
        often); ``every`` 0 watches nothing."""
        if every <= 0 or self._watcher is not None:
            return
        sync_every = min(every, sync_every or every)

        def loop() -> None:
            next_bundles = time.monotonic() + every
            while not self._stop.wait(sync_every):
                due = time.monotonic() >= next_bundles
                if due:
                    next_bundles = time.monotonic() + every
                self.check_for_updates(bundles=due)

        self._watcher = threading.Thread(target=loop, name="shoprank-watch", daemon=True)
        self._watcher.start()

    def models(self) -> Iterator[tuple[str, str, str, str]]:
        for state in self.loaded():
            for kind, slot in state.slots.items():
                yield state.name, kind, slot.version or "", slot.state

    def close(self) -> None:
        self._stop.set()
        if self.baseline is not None:
            self.baseline.close()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        for state in self.loaded():
            state.store.close()
        self._shops.clear()


def settle_heap(refreeze: bool = False) -> None:
    """Hide what loading made from the garbage collector (``gc.freeze``).

    A loaded shop is hundreds of thousands of long-lived objects (product records, their dicts and lists). Every
    full collection walked all of them, and re-ranking allocates a few hundred results per search: profiling a
    server at 25 searches/s on a 54,667-product shop found the collector in 377 of 1,724 samples (py-spy), and
    in none once frozen. ``refreeze`` (after a swap) first lets the collector see everything once more, so an
    old engine's reference cycles are freed, not kept forever."""
    import gc

    if refreeze:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def limit_threads(n: int) -> None:
    """One engine call uses ``n`` threads: the server runs several calls side by side instead.

    BLAS (numpy's and scipy's OpenBLAS) matters as much as PyTorch: its worker threads busy-wait between
    calls, so one small matrix product per request kept a core spinning (recommendations at 25 req/s: 98% server
    CPU before, 24% with BLAS capped)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "faiss" in sys.modules and hasattr(sys.modules["faiss"], "omp_set_num_threads"):
        sys.modules["faiss"].omp_set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a dependency of scikit-style libraries, usually there; without it BLAS keeps its pool
        return
    threadpool_limits(limits=n, user_api="blas")


def sync_shop(state: ShopState) -> None:
    """Bring the catalogue view and the engines up to the store's catalogue (writes by any process)."""
    with state.write_lock:
        changed, deleted = state.catalog.sync()
        if changed or deleted:
            apply_to_engines(state, changed, deleted)


def catch_up(state: ShopState, kind: str, engine: Any, since: int) -> None:
    """Apply to ``engine`` the catalogue writes acknowledged since the store's catalogue version ``since``
    (while it was loading). Call with ``state.write_lock`` held."""
    changed, deleted, _ = state.store.products_changed_since(since)
    _apply(kind, engine, changed, deleted)


def _apply(kind: str, engine: Any, products: list[Any], deleted: list[str]) -> None:
    if kind == "search":
        if products:
            engine.upsert_products(products)
        if deleted:
            engine.delete_products(deleted)
    else:
        if products:
            engine.add_products(products)
        if deleted and hasattr(engine, "forget_products"):
            engine.forget_products(deleted)


def apply_to_engines(state: ShopState, products: list[Any], deleted: list[str]) -> None:
    """Make catalogue changes visible to the shop's engines, the served ones and the experiments' other
    versions (incremental index updates). Call with ``state.write_lock`` held."""
    engines = [(kind, state.slots[kind].engine) for kind in KINDS]
    engines += [(kind, engine) for (kind, _), engine in list(state.variants.items())]
    for kind, engine in engines:
        if engine is not None:
            _apply(kind, engine, products, deleted)
