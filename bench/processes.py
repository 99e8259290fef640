"""Real processes for the reliability harness: a ``shoprank serve`` server, writers and publishers, kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python(*args: str, log: Path | None = None, stdout: int | None = None, errors: Path | None = None
           ) -> subprocess.Popen[str]:
    """Start ``python ARGS`` (this interpreter) with unbuffered output, in its own process group.

    Output goes to ``log`` (stdout and stderr), or stdout to ``stdout`` and stderr to ``errors`` (appended)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
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


def kill9(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process (and anything it started), then reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


class Server:
    """``python -m shoprank serve`` on a fixed 127.0.0.1 port, started and killed again and again."""

    def __init__(self, home: Path, *, watch: float = 0.2) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.watch = watch
        self.log = home / "server.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> float:
        """Start the server; returns seconds from the start until ``/health`` answers 200 (ready)."""
        started = time.perf_counter()
        self.process = python("-m", "shoprank", "serve", "--home", str(self.home), "--port", str(self.port),
                              "--watch", str(self.watch), log=self.log)
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
