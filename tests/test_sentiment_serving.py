"""Reviews, trends and alerts over HTTP (in-process), and webhooks against a real local HTTP server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.keys import KeyStore
from shoprank.sentiment.examples import review_history
from shoprank.serving import ServingConfig, create_app
from tests.support import serving
from tests.support.fakes import FAKE_LOADERS, tiny_shop

PRODUCTS = ["tools-0-0", "tools-0-1", "garden-0-0"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    tiny_shop(tmp_path, "tiny")
    admin, _ = KeyStore(tmp_path).create("admin")
    reader, _ = KeyStore(tmp_path).create("search", "tiny")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    yield app, admin, reader
    worker = getattr(app.state, "sentiment_worker", None)
    if worker is not None:
        worker.join(30)
        worker.close()
    app.state.registry.close()


def client(app: Any, key: str) -> httpx.AsyncClient:
    return serving.client(app, key, timeout=60)


class Hook:
    """A real HTTP server on 127.0.0.1: answers 500 ``failures`` times, then 200; or hangs ``hang_s``."""

    def __init__(self, failures: int = 0, hang_s: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                hook.calls += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hang_s:
                    time.sleep(hang_s)
                status = 500 if hook.calls <= failures else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def set_webhook(home: Path, url: str, **extra: Any) -> None:
    from shoprank.shops import Shop

    with Shop("tiny", home).store() as store:
        store.set_setting("sentiment.webhook", {"url": url, **extra})


@pytest.mark.anyio
async def test_reviews_validated_whole_flagged_and_trended(served: tuple[Any, str, str]) -> None:
    app, admin, reader = served
    now = time.time() - 60
    async with client(app, admin) as c:
        bad = await c.post("/shops/tiny/reviews", json={"reviews": [
            {"review_id": "a", "product_id": PRODUCTS[0], "text": "fine", "timestamp": now, "rating": 4},
            {"review_id": "b", "product_id": PRODUCTS[0], "text": "x", "timestamp": now, "rating": 7},
            {"review_id": "c", "product_id": PRODUCTS[0], "text": "", "timestamp": now}]})
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["field"] == "reviews[1].rating" and "nothing of the 3 reviews was stored" in error["message"]
        assert [d["field"] for d in error["details"]] == ["reviews[1].rating", "reviews[2].text"]
        huge = await c.post("/shops/tiny/reviews", json={"reviews": [
            {"review_id": "h", "product_id": PRODUCTS[0], "text": "y" * 1_000_000, "timestamp": now}]})
        assert huge.status_code in (413, 422)  # over the body limit or over the text limit: refused either way
        ok = await c.post("/shops/tiny/reviews", json={"reviews": [
            {"review_id": "a", "product_id": PRODUCTS[0], "text": "Broke at once", "timestamp": now, "rating": 1},
            {"review_id": "g", "product_id": "ghost", "text": "Nice", "timestamp": now, "rating": 5}]})
        assert ok.status_code == 200
        assert ok.json() == {"stored": 2, "updated": 0, "duplicates": 0, "flagged": 1, "unknown_products": ["ghost"]}
        forbidden = await client(app, reader).post("/shops/tiny/reviews", json={"reviews": []})
        assert forbidden.status_code == 403
        async with client(app, reader) as r:
            trend = (await r.get("/shops/tiny/sentiment", params={"product_id": PRODUCTS[0],
                                                                  "interval": "day"})).json()
            assert trend["label_source"] == "rating"
            assert [(p["reviews"], p["negative"]) for p in trend["points"]] == [(1, 1)]
            assert (await r.get("/shops/tiny/sentiment", params={"interval": "year"})).status_code == 422
            assert (await r.get("/shops/nope/sentiment")).status_code in (403, 404)


@pytest.mark.anyio
async def test_a_burst_alerts_and_reaches_a_webhook_that_fails_twice(served: tuple[Any, str, str],
                                                                     tmp_path: Path) -> None:
    app, admin, reader = served
    hook = Hook(failures=2)
    set_webhook(tmp_path, hook.url, timeout_s=2, attempts=4, backoff_s=0.05)
    rows, burst_start = review_history(PRODUCTS, burst_product=PRODUCTS[0])
    try:
        async with client(app, admin) as c:
            answer = await c.post("/shops/tiny/reviews", json={"reviews": rows})
            assert answer.status_code == 200 and answer.json()["stored"] == len(rows)
            assert app.state.sentiment_worker.join(60)
            alerts = (await c.get("/shops/tiny/alerts", params={"scope": f"product:{PRODUCTS[0]}"})).json()["alerts"]
        [alert] = alerts
        assert alert["scope"] == f"product:{PRODUCTS[0]}"
        assert burst_start <= alert["at_epoch"] <= burst_start + 3 * 86400
        assert alert["negative_share"] > alert["baseline_share"]
        assert (alert["delivered"], alert["attempts"]) == (True, 3)  # 500, 500, then 200
        assert f"product:{PRODUCTS[0]}" in {b["alert"]["scope"] for b in hook.bodies}
        async with client(app, reader) as r:
            everything = (await r.get("/shops/tiny/alerts")).json()["alerts"]
        assert f"product:{PRODUCTS[1]}" not in {a["scope"] for a in everything}
    finally:
        hook.close()


@pytest.mark.anyio
async def test_a_hanging_webhook_never_blocks_ingestion(served: tuple[Any, str, str], tmp_path: Path) -> None:
    app, admin, _ = served
    hook = Hook(hang_s=3.0)
    set_webhook(tmp_path, hook.url, timeout_s=0.3, attempts=2, backoff_s=0.05)
    rows, _ = review_history(PRODUCTS[:1], burst_product=PRODUCTS[0])
    try:
        async with client(app, admin) as c:
            answer = await c.post("/shops/tiny/reviews", json={"reviews": rows})
            assert answer.status_code == 200
            started = time.perf_counter()
            more = await c.post("/shops/tiny/reviews", json={"reviews": [dict(rows[0], review_id="late")]})
            assert more.status_code == 200 and time.perf_counter() - started < 2.0  # not waiting on the hook
            assert app.state.sentiment_worker.join(60)
            [alert] = (await c.get("/shops/tiny/alerts", params={"scope": f"product:{PRODUCTS[0]}"})).json()["alerts"]
        assert (alert["delivered"], alert["attempts"]) == (False, 2)
        assert "Timeout" in alert["delivery_error"]
    finally:
        hook.close()


def test_webhook_settings_are_checked() -> None:
    from shoprank.sentiment.webhook import WebhookConfig

    with pytest.raises(ValueError, match="http"):
        WebhookConfig("ftp://x")
    assert WebhookConfig.from_setting("http://h/x") == WebhookConfig("http://h/x")
    assert WebhookConfig.from_setting(None) is None
