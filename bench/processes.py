"""Real processes for the reliability harness: a ``shoprank serve`` server, writers and publishers, kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import serve

READY_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python(*args: str, log: Path | None = None, stdout: int | None = None, errors: Path | None = None
           ) -> subprocess.Popen[str]:
    """Start ``python ARGS`` (this interpreter) with unbuffered output, in its own process group.

    Output goes to ``log`` (stdout and stderr), or stdout to ``stdout`` and stderr to ``errors`` (appended)."""
    env = {**serve.environment(), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = log.open("ab") if log is not None else (stdout if stdout is not None else subprocess.DEVNULL)
    err = errors.open("ab") if errors is not None and log is None else None
    try:
        return subprocess.Popen([sys.executable, *args], stdout=out,
                                stderr=subprocess.STDOUT if log else (err or subprocess.DEVNULL),
                                env=env, text=True, start_new_session=True)
    finally:
        for handle in (out if log is not None else None, err):
            if handle is not None:
                handle.close()  # type: ignore[union-attr]


def has_open(pid: int, name: str) -> bool:
    """Whether process ``pid`` holds a file whose name starts with ``name`` open (Linux ``/proc``)."""
    folder = Path(f"/proc/{pid}/fd")
    try:
        links = [os.readlink(folder / fd) for fd in os.listdir(folder)]
    except OSError:
        return False
    return any(Path(link).name.startswith(name) for link in links)


def kill9(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process (and anything it started), then reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


class Server:
    """``python -m shoprank serve`` on a fixed 127.0.0.1 port, started and killed again and again.

    ``fakes`` (the reliability harness's tiny shops): ``python -m tests.support.serve`` instead, which also serves
    the fake engines' bundles of :func:`tests.support.fakes.tiny_shop`."""

    def __init__(self, home: Path, *, watch: float = 0.2, fakes: bool = True) -> None:
        self.home = home
        self.fakes = fakes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.watch = watch
        self.log = home / "server.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> float:
        """Start the server; returns seconds from the start until ``/health`` answers 200 (ready)."""
        started = time.perf_counter()
        args = ("--home", str(self.home), "--port", str(self.port), "--watch", str(self.watch))
        entry = serve.command(*args)[1:] if self.fakes else ["-m", "shoprank", "serve", *args]
        self.process = python(*entry, log=self.log)
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log}")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"server not ready in {READY_TIMEOUT:.0f} s; see {self.log}")

    def kill(self) -> None:
        if self.process is not None:
            kill9(self.process)
            self.process = None

    def stop(self) -> None:
        """A clean stop (SIGTERM), for the end of a scenario."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill9(self.process)
        self.process = None


PUBLISHER = r"""
import json, os, sys, time
from shoprank.bundles import latest_version, publish
from shoprank.shops import Shop
shop, kind, megabytes, work = Shop(sys.argv[1], sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
runs = shop.path / "runs" / f"fake-{os.getpid()}"
runs.mkdir(parents=True, exist_ok=True)
while True:
    for epoch in range(int(work * 10)):  # "training": checkpoints written as it goes
        (runs / f"epoch{epoch}.bin").write_bytes(os.urandom(64 * 1024))
        time.sleep(0.1)
    with publish(shop.models_path, kind, params={"engine": "fake"}) as folder:
        (folder / "weights.json").write_text(json.dumps({"personal": 0.5}))
        for j in range(2):
            (folder / f"blob{j}.bin").write_bytes(os.urandom(int(megabytes * 2**20)))
    print("ACK", latest_version(shop.models_path, kind), flush=True)
"""


class Reader(threading.Thread):
    """Reads from the server every 50 ms while it is up; counts answers other than 200."""

    def __init__(self, url: str, key: str, path: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.path = url, key, path
        self.halt = threading.Event()
        self.reads = 0
        self.failures: list[str] = []
        self.version: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as c:
            while not self.halt.wait(0.05):
                try:
                    answer = c.get(self.path)
                except httpx.TransportError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.reads += 1
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                else:
                    self.version = answer.json()["model_version"]
