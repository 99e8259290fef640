from __future__ import annotations

import subprocess
import sys

import shoprank


def test_public_names():
    assert sorted(shoprank.__all__) == [
        "Event", "Judgment", "Product", "RecordError", "Shop", "Store", "__version__", "list_shops", "open_store",
    ]
    for name in shoprank.__all__:
        assert hasattr(shoprank, name)


def test_import_and_help_load_nothing_heavy():
    code = (
        "import sys, shoprank; from shoprank.cli.main import build_parser; build_parser(); "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'lightgbm', 'faiss', 'fastapi', "
        "'numpy', 'pandas') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
