"""A real ``shoprank serve`` process for ``bench.click_learning``: started on a free port against a home folder
with a temporary admin key, and the few calls the simulated shoppers and the scorer make over HTTP.

The server runs with ``--no-baseline`` (the bench publishes each shop's baseline bundle itself, with the
catalogue's embeddings computed once, instead of every shop embedding it in the background) and ``--watch 0``
(it is the only writer; new bundles are swapped in with ``POST /admin/reload``) and lets a search wait up to
2 s for an engine (the machine is shared; a 503 is retried). Its log goes to
``HOME/click_learning_server.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.serve import free_port

EVENT_BATCH = 2000  # events per POST (the server takes up to 10,000)
RETRIES = 30


class ServerError(RuntimeError):
    pass


def server_env(seed_window: int | None) -> dict[str, str]:
    from shoprank.rerank.shop import SEED_WINDOW_ENV

    env = {k: v for k, v in os.environ.items() if k != SEED_WINDOW_ENV}
    if seed_window is not None:
        env[SEED_WINDOW_ENV] = str(seed_window)
    return env


class ShopServer:
    """``with ShopServer(home) as server: server.search("shop", "drill")``: the process ends and the key is
    revoked on exit."""

    def __init__(self, home: Path, *, ready_timeout: float = 900.0, concurrency: int = 2,
                 extra: Sequence[str] = (), seed_window: int | None = 0) -> None:
        """``seed_window`` pins the server's randomisation seeds (``$SHOPRANK_SEED_WINDOW``) so that a run repeats;
        None leaves them to the clock's five-minute windows, as a shop's server has them."""
        import httpx

        from shoprank.keys import KeyStore

        self.home = Path(home)
        self.concurrency = concurrency
        self._keys = KeyStore(self.home)
        key, record = self._keys.create("admin", name="bench.click_learning (temporary)")
        self._key_id = record.id
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = self.home / "click_learning_server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shoprank", "serve", "--home", str(self.home), "--port", str(port),
             "--watch", "0", "--no-baseline", "--engine-queue-ms", "2000", *extra],
            stdout=log, stderr=subprocess.STDOUT, env=server_env(seed_window))
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=300.0)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the server exited with {self.process.returncode}; see {self.log_path}")
            try:
                if self.client.get("/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ServerError(f"the server was not ready within {timeout:.0f} s; see {self.log_path}")

    def __enter__(self) -> ShopServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._keys.revoke(self._key_id)

    # calls --------------------------------------------------------------------------------------
    def _json(self, response: Any) -> dict[str, Any]:
        if response.status_code != 200:
            raise ServerError(f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} "
                              f"{response.text[:300]}")
        return response.json()

    def search(self, shop: str, query: str, per_page: int, session_id: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"q": query, "per_page": per_page, "facets": "false"}
        if session_id:
            params["session_id"] = session_id
        for attempt in range(RETRIES):  # 503: the engines were busy past the queue's wait; a shopper retries
            response = self.client.get(f"/shops/{shop}/search", params=params)
            if response.status_code != 503:
                break
            time.sleep(0.2 * (attempt + 1))
        return self._json(response)

    def search_many(self, shop: str, asks: Sequence[tuple[str, str | None]], per_page: int) -> list[dict[str, Any]]:
        """``(query, session_id)`` each, ``concurrency`` requests in flight; answers in the same order."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda ask: self.search(shop, ask[0], per_page, ask[1]), asks))

    def post_events(self, shop: str, events: Iterable[dict[str, Any]]) -> dict[str, int]:
        """POST in batches; the sums of stored, duplicates, attributed and unattributed."""
        rows = list(events)
        total = {"stored": 0, "duplicates": 0, "attributed": 0, "unattributed": 0}
        for start in range(0, len(rows), EVENT_BATCH):
            answer = self._json(self.client.post(f"/shops/{shop}/events",
                                                 json={"events": rows[start : start + EVENT_BATCH]}))
            for name in total:
                total[name] += int(answer.get(name, 0))
        return total

    def set_rerank(self, shop: str, **settings: Any) -> dict[str, Any]:
        return self._json(self.client.put(f"/shops/{shop}/settings/rerank", json=settings))["settings"]

    def reload(self, shop: str, version: str) -> None:
        """Swap in the shop's latest search bundle; it must be ``version``."""
        report = self._json(self.client.post("/admin/reload", params={"shop": shop, "kind": "search"}))
        entry = report["shops"][shop]["search"]
        if entry.get("version") != version or entry.get("status") == "failed":
            raise ServerError(f"shop {shop}: the server serves {entry} after reloading, not {version}")

    def impressions_flushed(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the server's impression queue is written to the stores; its counters."""
        deadline = time.monotonic() + timeout
        while True:
            info = self._json(self.client.get("/admin/status"))["impressions"]
            if info["queued"] == 0 and info["writing"] == 0:
                return info
            if time.monotonic() > deadline:
                raise ServerError(f"impressions still queued after {timeout:.0f} s: {info}")
            time.sleep(0.2)
