"""The load generator (bench/serve.py) against an in-process server with fake engines: short and light."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.serve import held_rate, parse_timing, percentile
from bench.serve import main as bench_main
from shoprank.keys import KeyStore
from tests.support.fakes import tiny_shop
from tests.support.serving import threaded_server


def test_percentiles_and_held_rate() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    steps = [{"rate": 50, "p99_ms": 10, "error_rate": 0}, {"rate": 100, "p99_ms": 90, "error_rate": 0},
             {"rate": 200, "p99_ms": 300, "error_rate": 0.2}]
    assert held_rate(steps) == 100
    assert parse_timing("engine;dur=1.5, encode;dur=0.25") == {"engine": 0.0015, "encode": 0.00025}


def test_open_model_load_against_a_server(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("search", "tiny")
    with threaded_server(tmp_path) as (_, port):
        result = bench_main(["--home", str(tmp_path), "--shop", "tiny", "--endpoint", "search", "--url",
                             f"http://127.0.0.1:{port}", "--key", key, "--rates", "20,40", "--duration", "1",
                             "--warmup", "0", "--drain", "3", "--no-write"])
    assert [s["rate"] for s in result["steps"]] == [20, 40]
    first = result["steps"][0]
    assert first["requests"] == 20 and first["error_rate"] == 0
    assert 0 < first["p50_ms"] <= first["p99_ms"]
    assert "engine" in first["server_mean_ms"]


@pytest.mark.parametrize("endpoint", ["recommend", "similar"])
def test_request_paths(tmp_path: Path, endpoint: str) -> None:
    from bench.serve import request_paths

    tiny_shop(tmp_path, "tiny")
    paths = request_paths(tmp_path, "tiny", endpoint, 10)
    assert paths and all(p.startswith("/shops/tiny/") for p in paths)



def test_the_bench_server_runs_the_shoprank_the_bench_imported(tmp_path: Path) -> None:
    """Under ``bench.with_code`` the server must run the "before" package, not the working folder's checkout."""
    import os
    import shutil
    import subprocess
    import sys

    import shoprank

    before = tmp_path / "before"
    shutil.copytree(Path(shoprank.__file__).parent, before / "shoprank", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "launch_probe.py").write_text(
        "import subprocess\nfrom bench.serve import server_launch\n"
        "command, root, env = server_launch('h', 1, [])\n"
        "print(subprocess.run([command[0], '-c', 'import shoprank; print(shoprank.__file__)'], cwd=root, env=env,"
        " capture_output=True, text=True, check=True).stdout.strip())\n")
    ran = subprocess.run([sys.executable, "-m", "bench.with_code", str(before), "launch_probe"],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == str(before / "shoprank" / "__init__.py")
