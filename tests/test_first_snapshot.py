"""A new shop's first search baseline reuses the products read when the shop was opened, and only while the
catalogue is still at that version: a product written in between is searchable all the same."""

from __future__ import annotations

from pathlib import Path

from shoprank.data.records import Product
from shoprank.serving import ServingConfig, create_app
from shoprank.shops import Shop

TITLES = ["cordless drill kit", "garden hose 50 ft", "chrome bathroom faucet", "step ladder 6 ft"]


def opened(home: Path):
    with Shop("fresh", home).store() as store:
        store.upsert_products([Product(f"p{i}", t) for i, t in enumerate(TITLES)])
    app = create_app(home, open_access=True, config=ServingConfig(watch_seconds=0, baseline_embeddings=False))
    registry = app.state.registry
    registry.baseline.schedule = lambda *a, **k: None  # the request's own build only
    return registry, registry.get("fresh")


def found(slot, query: str) -> list[str]:
    return [pid for pid, _ in slot.engine.search_ids(query, top=5)]


def test_first_build_reuses_the_products_read_at_opening(tmp_path: Path, monkeypatch) -> None:
    registry, state = opened(tmp_path)
    assert state.first_snapshot is not None and len(state.first_snapshot[0]) == len(TITLES)
    assert len(state.catalog) == len(TITLES)
    import shoprank.baseline.worker as worker

    monkeypatch.setattr(worker, "_snapshot", lambda shop: (_ for _ in ()).throw(AssertionError("read again")))
    slot = registry.fill_missing(state, "search")
    assert slot.state == "ready" and found(slot, "drill") == ["p0"]
    assert state.first_snapshot is None  # used once
    registry.close()


def test_a_product_written_after_opening_is_searchable(tmp_path: Path) -> None:
    registry, state = opened(tmp_path)
    state.store.upsert_products([Product("p9", "wheelbarrow steel")])
    slot = registry.fill_missing(state, "search")
    assert slot.state == "ready" and found(slot, "wheelbarrow") == ["p9"] and found(slot, "hose") == ["p1"]
    registry.close()
