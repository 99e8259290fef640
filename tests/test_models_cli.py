"""``shoprank models list|prune``: the newest bundles of each sort stay, the serving one and an experiment's too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shoprank.abtest.book import start_experiment
from shoprank.abtest.config import parse_experiment
from shoprank.bundles import latest_version, list_versions, publish, set_latest
from shoprank.cli.main import main
from shoprank.shops import Shop


def published(shop: Shop, prefix: str = "") -> str:
    with publish(shop.models_path, "recommend", {}, version_prefix=prefix) as folder:
        (folder / "x.json").write_text("{}" * 1000)
    time.sleep(0.01)  # publication times differ: versions of one second sort by their random tail only
    return latest_version(shop.models_path, "recommend")


@pytest.fixture
def shop(home: Path) -> Shop:
    shop = Shop("s", home)
    shop.store().close()
    return shop


def models(home: Path, *argv: str) -> int:
    return main(["models", *argv, "--shop", "s", "--home", str(home)])


def test_prune_keeps_the_newest_the_serving_and_the_experiments_bundles(
        shop: Shop, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = [published(shop) for _ in range(4)]
    baselines = [published(shop, "baseline-") for _ in range(5)]
    set_latest(shop.models_path, "recommend", trained[1])  # rolled back to an older trained bundle
    with shop.store() as store:
        start_experiment(store, parse_experiment("t0", {
            "kind": "ab", "surface": "recommend", "traffic": {"a": 0.5, "b": 0.5},
            "variants": {"a": {"recommend_model": trained[0]}, "b": {}}},
            versions=lambda kind: list_versions(shop.models_path, kind)))
    before = set(list_versions(shop.models_path, "recommend"))

    assert models(home, "prune", "--keep", "1", "--dry-run") == 0
    said = capsys.readouterr().out
    assert set(list_versions(shop.models_path, "recommend")) == before  # a dry run removes nothing
    assert f"would remove recommend {trained[2]}" in said and "would remove 3 bundles" in said

    assert models(home, "prune", "--keep", "1") == 0
    kept = set(list_versions(shop.models_path, "recommend"))
    assert kept == {trained[0], trained[1], trained[3], *baselines[-3:]}  # experiment's, serving, newest; 3 baselines
    assert models(home, "prune", "--keep", "1") == 0
    assert "removed 0 bundles" in capsys.readouterr().out

    assert models(home, "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows] == [trained[0], trained[1], trained[3], *baselines[-3:]]
    assert [r["version"] for r in rows if r["serving"]] == [trained[1]]
    assert [r["version"] for r in rows if r["experiment"]] == [trained[0]]
    assert all(r["bytes"] > 2000 for r in rows) and sum(r["baseline"] for r in rows) == 3


def test_prune_refuses_keeping_nothing(shop: Shop, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    published(shop)
    assert models(home, "prune", "--keep", "0") == 1
    assert "--keep: keep at least 1" in capsys.readouterr().err
    assert models(home, "list") == 0
    assert "(serving)" in capsys.readouterr().out
