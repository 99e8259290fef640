"""``Shop.copy_to``: a shop copied into another home through the store's backup (what bench.overload serves)."""

from __future__ import annotations

from pathlib import Path

from shoprank.bundles import latest_version, open_bundle
from shoprank.shops import Shop
from tests.support.fakes import tiny_shop


def test_a_copied_shop_holds_the_same_records_and_bundles(tmp_path: Path) -> None:
    source = tiny_shop(tmp_path / "a", "tiny")
    copy = source.copy_to(tmp_path / "b")
    assert copy.home == tmp_path / "b" and copy.exists()
    with source.store(create=False) as a, copy.store(create=False) as b:
        assert b.counts() == a.counts() and b.counts()["products"] == 40
        assert [p.id for p in b.iter_products()] == [p.id for p in a.iter_products()]
        assert [e.event_id for e in b.iter_events()] == [e.event_id for e in a.iter_events()]
        assert b.check_integrity() == []
    for kind in ("search", "recommend"):
        assert latest_version(copy.models_path, kind) == latest_version(source.models_path, kind)
        open_bundle(copy.models_path, kind)  # checksums verified
    with copy.store(create=False) as b:  # the copy is its own: writing to it leaves the source alone
        b.delete_products(["tools-0-0"])
    with Shop("tiny", tmp_path / "a").store(create=False) as a:
        assert a.get_product("tools-0-0") is not None
