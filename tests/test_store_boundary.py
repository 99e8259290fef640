"""The store is reached only through the ``Store`` interface: no module outside ``shoprank/store/`` names an
implementation, so a second store needs no change elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = {"SQLiteStore", "PostgresStore", "shoprank.store.sqlite", "shoprank.store.postgres"}


def _names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            used.add(node.module)
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name | ast.Attribute):
            used.add(node.id if isinstance(node, ast.Name) else node.attr)
    return used


@pytest.mark.parametrize("folder", ["shoprank", "bench"])
def test_no_module_outside_the_store_names_an_implementation(folder: str) -> None:
    offenders = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.is_relative_to(ROOT / "shoprank" / "store"):
            continue
        found = _names_used(path) & IMPLEMENTATIONS
        if found:
            offenders[str(path.relative_to(ROOT))] = sorted(found)
    assert offenders == {}, f"open stores with Shop.store() or shoprank.store.open_store instead: {offenders}"


def test_the_checker_sees_a_direct_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from shoprank.store.sqlite import SQLiteStore\nstore = SQLiteStore('x')\n")
    assert {"shoprank.store.sqlite", "SQLiteStore"} <= _names_used(module)
