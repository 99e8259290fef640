"""``shoprank serve --workers 2``: two real server processes on one port, supervised, over a real baseline shop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoprank.cli.main import main
from shoprank.keys import KeyStore
from tests.support.waiting import poll
from tests.test_serving_server import free_port, stop


def workers_of(pid: int) -> set[int]:
    """The worker processes uvicorn started under ``pid`` (its multiprocessing spawn children)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client, Path]]:
    products = tmp_path / "products.jsonl"
    products.write_text("".join(json.dumps({"id": f"p{i}", "title": f"{word} {i}", "category": "Tools"}) + "\n"
                                for i, word in enumerate(["cordless drill", "claw hammer", "garden hose"] * 4)))
    assert main(["ingest", "products", str(products), "--shop", "hw", "--home", str(tmp_path), "--quiet"]) == 0
    key, _ = KeyStore(tmp_path).create("admin")
    port = free_port()
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "shoprank", "serve", "--home", str(tmp_path), "--port", str(port), "--workers", "2",
         "--no-baseline-embeddings", "--sync", "0.2", "--watch", "0.5"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def ready() -> bool:
        try:  # every worker ready: a run of answers, on fresh connections, all 200
            return all(httpx.get(f"{url}/health", timeout=2).status_code == 200 for _ in range(6))
        except httpx.TransportError:
            return False

    try:
        assert poll(ready, timeout=120, every=0.2), log.read_text()
        yield process, c, tmp_path
    finally:
        c.close()
        stop(process)


def test_two_workers_answer_restart_after_a_crash_and_follow_each_others_writes(
        served: tuple[subprocess.Popen[bytes], httpx.Client, Path]) -> None:
    process, c, home = served
    first = workers_of(process.pid)
    assert len(first) == 2
    answer = c.get("/shops/hw/search", params={"q": "drill"}).json()
    assert answer["hits"] and all(h["title"].startswith("cordless drill") for h in answer["hits"])
    assert answer["model_version"].startswith("baseline-")
    assert json.loads((home / "server.json").read_text())["pid"] == process.pid  # CLI queries find the server

    os.kill(sorted(first)[0], signal.SIGKILL)  # uvicorn's supervisor starts a new worker in its place
    assert poll(lambda: len(workers_of(process.pid) - first) == 1 and len(workers_of(process.pid)) == 2,
                timeout=60, every=0.2)

    put = c.put("/shops/hw/products", json={"products": [{"id": "new-1", "title": "zyzzyva drill press"}]})
    assert put.status_code == 200, put.text

    def everywhere() -> bool:  # each fresh connection may land on either worker
        return all(httpx.get(str(c.base_url.join("/shops/hw/search")), params={"q": "zyzzyva"}, headers=c.headers,
                             timeout=5).json()["total"] == 1 for _ in range(8))

    assert poll(everywhere, timeout=60, every=0.2)


def test_the_server_stops_with_its_workers_and_withdraws_its_file(
        served: tuple[subprocess.Popen[bytes], httpx.Client, Path]) -> None:
    process, _, home = served
    workers = workers_of(process.pid)
    stop(process)
    assert process.returncode is not None and not (home / "server.json").exists()
    assert poll(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=20)


def test_workers_must_be_at_least_one() -> None:
    from shoprank.serving import ServingConfig

    with pytest.raises(ValueError, match="workers must be at least 1"):
        ServingConfig(workers=0)
