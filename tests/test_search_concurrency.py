"""Searches run side by side; catalogue changes exclude them; query embeddings are cached per engine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoprank.data.records import Product
from shoprank.search import SearchEngine
from shoprank.search.locking import ReadWriteLock
from shoprank.shops import Shop
from tests.support.waiting import poll
from tests.test_search_helpers import (
    KEYWORDS,
    KeywordEncoder,
    register_keyword_encoder,
    tiny_catalogue,
    train_tiny_search,
)


class ReversedKeywordEncoder(KeywordEncoder):
    """Another "model": the keyword dimensions in reverse order, so its query vectors differ."""

    def _encode(self, texts: Any) -> np.ndarray:
        out = super()._encode(texts)
        out[:, : len(KEYWORDS)] = out[:, : len(KEYWORDS)][:, ::-1]
        return out


def _train(shop: Shop, encoder_name: str, encoder: Any, first: bool = False) -> None:
    train_tiny_search(shop, encoder, encoder_name, seed_data=first)


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    register_keyword_encoder()
    shop = Shop("tiny", tmp_path / "home")
    _train(shop, "keyword", KeywordEncoder(), first=True)
    return shop


def test_readers_share_the_lock_and_a_writer_has_it_alone() -> None:
    lock = ReadWriteLock()
    both_in = threading.Barrier(2, timeout=5)
    events: list[str] = []

    writer_waits = threading.Event()

    def reader(name: str) -> None:
        with lock.read():
            both_in.wait()  # breaks (BrokenBarrierError) unless two readers are inside at once
            assert writer_waits.wait(5)  # leave only once the writer is queued behind both readers
            events.append(f"{name} out")

    def writer() -> None:
        with lock.write():
            events.append("writer in")

    readers = [threading.Thread(target=reader, args=(n,)) for n in ("a", "b")]
    for t in readers:
        t.start()
    assert poll(lambda: lock.readers == 2)
    w = threading.Thread(target=writer)
    w.start()
    assert poll(lambda: lock.waiting_writers == 1) and events == []  # two readers in, the writer kept out
    writer_waits.set()
    for t in [*readers, w]:
        t.join(5)
    assert events[-1] == "writer in" and sorted(events[:2]) == ["a out", "b out"]


def test_a_waiting_writer_goes_before_new_readers() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def first_reader() -> None:
        with lock.read():
            first_in.set()
            release.wait(5)

    def writer() -> None:
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("late reader")

    threads = [threading.Thread(target=first_reader)]
    threads[0].start()
    first_in.wait(5)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    assert poll(lambda: lock.waiting_writers == 1)  # the writer is waiting now
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    threads[2].join(0.05)
    assert threads[2].is_alive() and order == [] and lock.readers == 1  # the late reader waits behind the writer
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["writer", "late reader"]


def test_two_searches_run_at_once(shop: Shop) -> None:
    engine = SearchEngine.load(shop)
    together = threading.Barrier(2, timeout=5)
    rank = engine.stack.rank

    def meet_then_rank(*args: Any, **kwargs: Any) -> Any:
        together.wait()  # only passes if both searches are inside the engine at the same time
        return rank(*args, **kwargs)

    engine.stack.rank = meet_then_rank  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def one(query: str) -> None:
        try:
            items, _ = engine.search(query, k=3)
            assert items
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(q,)) for q in ("cordless drill", "garden hose")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []


def test_searches_during_upserts_see_a_whole_catalogue(shop: Shop) -> None:
    engine = SearchEngine.load(shop)
    known = {p.id for p in tiny_catalogue()}
    stop = threading.Event()
    errors: list[BaseException] = []
    answered = [0]

    def searcher() -> None:
        while not stop.is_set():
            try:
                for query in ("cordless drill", "ladder 3", "paint"):
                    items, total = engine.search(query, k=5)
                    assert items and total >= len(items)
                    assert all(item.id in known or item.id.startswith("new-") for item in items)
                    answered[0] += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(20):
        engine.upsert_products([Product(id=f"new-{n}", title=f"titanium drill bit {n}", brand="zeta",
                                        category="Home > Tools", price=5.0 + n)])
        if n % 5 == 4:
            engine.delete_products([f"new-{n - 1}"])
        seen = answered[0]
        assert poll(lambda seen=seen: answered[0] > seen or errors)  # a search ran between this write and the next
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == [] and answered[0] >= 20
    ids = [item.id for item in engine.search("titanium drill bit 19", k=3)[0]]
    assert ids[0] == "new-19" and "new-18" not in [i.id for i in engine.search("titanium drill bit 18", k=40)[0]]


def test_query_embeddings_are_cached_per_engine_and_a_new_bundle_starts_empty(shop: Shop) -> None:
    from shoprank.search.stack import ENCODERS

    old = SearchEngine.load(shop)
    old.search("cordless drill", k=3)
    old.search(" cordless   drill", k=3)  # same normalised query: embedded once (case folds only when the
    # tokenizer lower-cases, which the keyword encoder does not declare)
    assert old.query_cache.misses == 1 and old.query_cache.hits == 1
    cached = old.query_cache.get("cordless drill")
    assert cached is not None

    ENCODERS["keyword-reversed"] = lambda folder, config: ReversedKeywordEncoder()
    _train(shop, "keyword-reversed", ReversedKeywordEncoder())  # a new bundle with another query encoder
    new = SearchEngine.load(shop)
    assert new.version != old.version and len(new.query_cache) == 0
    new.search("cordless drill", k=3)
    np.testing.assert_allclose(new.query_cache.get("cordless drill"),
                               ReversedKeywordEncoder().encode_queries(["cordless drill"])[0])
    assert not np.allclose(new.query_cache.get("cordless drill"), cached)


def test_registry_reload_swaps_in_an_engine_with_its_own_cache(shop: Shop) -> None:
    from shoprank.search.stack import ENCODERS
    from shoprank.serving.registry import EngineRegistry

    registry = EngineRegistry(shop.home)
    try:
        state = registry.get(shop.name)
        before = state.slots["search"].engine
        before.search("garden hose", k=3)
        ENCODERS["keyword-reversed"] = lambda folder, config: ReversedKeywordEncoder()
        _train(shop, "keyword-reversed", ReversedKeywordEncoder())
        report = registry.reload(shop.name, ("search",))
        after = state.slots["search"].engine
        assert report["search"]["status"] == "reloaded" and after is not before
        assert len(after.query_cache) == 0 and len(before.query_cache) == 1
    finally:
        registry.close()
