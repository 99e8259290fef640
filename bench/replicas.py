"""Several ``shoprank serve`` processes sharing one PostgreSQL store and one models folder.

The harness of the replica test (``tests/test_replicas.py``) and of the replication-delay figures of
``python -m bench.scale``: start replicas, write through one, time until another serves the write.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Replica:
    """One ``shoprank serve --store URL`` process on a free port of 127.0.0.1 (through ``python -m
    tests.support.serve``, so the fake engines of :func:`tests.support.fakes.tiny_shop` are served too)."""

    def __init__(self, home: Path, store: str, *extra: str) -> None:
        self.home, self.store, self.extra = home, store, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"replica-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until ``/health`` says ready; returns the seconds it took."""
        began = time.perf_counter()
        env = serve.environment({**os.environ, "PYTHONUNBUFFERED": "1"})
        self.process = subprocess.Popen(
            serve.command("--home", str(self.home), "--store", self.store, "--port", str(self.port), *self.extra),
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"replica exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"replica not ready in {timeout:.0f} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def wait_for(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.01) -> float:
    """Seconds until ``check()`` holds (polled every ``every`` s); raises TimeoutError after ``timeout``."""
    began = time.perf_counter()
    while True:
        if check():
            return time.perf_counter() - began
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"not seen within {timeout} s")
        time.sleep(every)


def search_ids(client: httpx.Client, shop: str, query: str, k: int = 20) -> list[str]:
    answer = client.get(f"/shops/{shop}/search", params={"q": query, "per_page": k, "diversity": 0})
    answer.raise_for_status()
    return [hit["id"] for hit in answer.json()["hits"]]


def recommended_ids(client: httpx.Client, shop: str, user: str, k: int = 5) -> list[str]:
    answer = client.get(f"/shops/{shop}/users/{user}/recommendations", params={"k": k, "diversity": 0})
    answer.raise_for_status()
    return [item["id"] for item in answer.json()["items"]]
