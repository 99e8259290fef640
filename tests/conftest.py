from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_ROOT = Path(os.environ.get("SHOPRANK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


@pytest.fixture
def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        pytest.skip(f"real data sets not found at {DATA_ROOT} (set SHOPRANK_DATA to run these tests)")
    return DATA_ROOT


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("SHOPRANK_HOME", str(folder))
    return folder
