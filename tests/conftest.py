from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Model exports (the ONNX towers of the base model) go to a folder of this run, not the user's ~/.cache: every
# run starts as a fresh machine does, whatever earlier runs or benches left behind.
os.environ["SHOPRANK_CACHE"] = tempfile.mkdtemp(prefix="shoprank-test-cache-")

# Property tests check what holds, not how fast: a shared or loaded machine must not turn a slow example into
# a failure.
settings.register_profile("shoprank", deadline=None)
settings.load_profile("shoprank")

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


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the whole run: ``$SHOPRANK_TEST_PG`` (CI starts one), else a throw-away one
    started here from the installed binaries; skipped only where PostgreSQL is not installed."""
    import shutil
    import tempfile

    from bench import pgserver

    url = os.environ.get(pgserver.TEST_URL_ENV)
    if url:
        yield url
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -r requirements.lock)")
    if pgserver.binaries() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide PostgreSQL: .ci/run installs it and sets ${pgserver.TEST_URL_ENV}")
        pytest.skip(f"PostgreSQL is not installed (apt-get install postgresql) and ${pgserver.TEST_URL_ENV} is unset")
    folder = Path(tempfile.mkdtemp(prefix="shoprank-pg-"))
    try:
        yield pgserver.start(folder)
    finally:
        pgserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str):
    """A fresh database of its own for one test, dropped afterwards."""
    from bench.pgserver import fresh_database

    with fresh_database(pg_server) as url:
        yield url
