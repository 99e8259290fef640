"""The package ships no fake engine, and the production loader refuses a bundle that names one."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from shoprank.bundles import latest_version
from shoprank.serving import ServingConfig, create_app
from shoprank.serving.registry import load_recommender, load_search
from tests.support.fakes import FAKE_ENGINE, tiny_shop

PACKAGE = Path(__file__).resolve().parents[1] / "shoprank"


def test_the_package_defines_no_fake_engine() -> None:
    assert importlib.util.find_spec("shoprank.serving.fakes") is None
    fakes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests":
                fakes.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and "fake" in node.name.casefold():
                fakes.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
            if isinstance(node, ast.Constant) and node.value == FAKE_ENGINE:
                fakes.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} the string {FAKE_ENGINE!r}")
    assert not fakes, "fake engines belong in tests/support: " + "; ".join(fakes)


def test_the_production_loader_refuses_a_fake_bundle(tmp_path: Path) -> None:
    shop = tiny_shop(tmp_path, "tiny")  # its bundles' manifests say "engine": "fake"
    with pytest.raises(ValueError, match="names engine 'fake'.*shoprank train search --shop tiny"):
        load_search(shop)
    with pytest.raises(ValueError, match="names engine 'fake'.*shoprank train recommend --shop tiny"):
        load_recommender(shop)
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0, baseline=False))
    try:
        state = app.state.registry.get("tiny")
        for kind in ("search", "recommend"):
            slot = state.slots[kind]
            assert slot.state == "failed" and slot.engine is None
            assert slot.failed_version == latest_version(shop.models_path, kind)
            assert "names engine 'fake'" in (slot.error or "")
    finally:
        app.state.registry.close()
