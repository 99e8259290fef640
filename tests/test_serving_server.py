"""A real server process: ``python -m shoprank serve`` on 127.0.0.1 against a tiny shop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoprank.keys import KeyStore
from tests.support import serve
from tests.support.fakes import FAKE_LOADERS, tiny_shop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = home / f"server-{port}.log"
    env = serve.environment({**os.environ, "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        serve.command("--home", str(home), "--port", str(port), "--access-log", *extra),
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server not ready in 30 s: {log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    process, url, log = start_server(tmp_path)
    try:
        yield url, key, log
    finally:
        stop(process)


def test_real_server_answers_and_never_logs_keys(server: tuple[str, str, Path]) -> None:
    url, key, log = server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        search = c.get("/shops/tiny/search", params={"q": "drill"})
        posted = c.post("/shops/tiny/events", json={"events": [
            {"event_id": "srv-1", "user_id": "s1", "item_id": "garden-0-0", "type": "purchase",
             "timestamp": time.time() - 1}]})
        recs = c.get("/shops/tiny/users/s1/recommendations", params={"k": 3})
        metrics = c.get("/metrics")
        anonymous = httpx.get(f"{url}/shops/tiny/search?q=drill")
        wrong = httpx.get(f"{url}/shops/tiny/search?q=drill", headers={"Authorization": f"Bearer {key}x"})
    assert search.status_code == 200 and search.json()["hits"][0]["title"].endswith("Drill")
    assert posted.json() == {"stored": 1, "duplicates": 0}
    assert recs.json()["items"][0]["id"].startswith("garden")
    assert "shoprank_requests_total" in metrics.text
    assert anonymous.status_code == 401 and wrong.status_code == 401
    text = log.read_text()
    assert "GET /shops/tiny/search" in text  # the access log is on ...
    assert key not in text and key.split("_")[-1] not in text  # ... and never shows a key


def test_serve_command_passes_its_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    import shoprank.serving as serving
    from shoprank.cli.main import main

    calls = []
    monkeypatch.setattr(serving, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert main(["serve", "--home", str(tmp_path), "--port", "8123", "--open", "--max-in-flight", "7"]) == 0
    (home, host, port, open_access), kwargs = calls[0]
    assert (str(home), host, port, open_access) == (str(tmp_path), "127.0.0.1", 8123, True)
    assert kwargs["config"].max_in_flight == 7
    assert "WARNING" in capsys.readouterr().out
    monkeypatch.setenv("SHOPRANK_SEED_WINDOW", "3")
    assert main(["serve", "--home", str(tmp_path), "--port", "8123"]) == 0
    assert "seed window is pinned to 3" in capsys.readouterr().out
    monkeypatch.setenv("SHOPRANK_SEED_WINDOW", "later")
    assert main(["serve", "--home", str(tmp_path), "--port", "8123"]) != 0
    assert "SHOPRANK_SEED_WINDOW must be a whole number" in capsys.readouterr().err
    assert len(calls) == 2  # the refused one never started


def test_demo_key_and_banner(tmp_path: Path) -> None:
    from shoprank.serving import create_app, demo_key
    from shoprank.serving.demo import banner

    tiny_shop(tmp_path, "tiny")
    first, _ = demo_key(tmp_path)
    key, record = demo_key(tmp_path)
    keys = KeyStore(tmp_path)
    assert keys.verify(first) is None and keys.verify(key) is not None  # one live demo key at a time
    app = create_app(tmp_path, loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    text = banner("http://127.0.0.1:8000", key, record, app.state.registry, tmp_path)
    app.state.registry.close()
    assert f"http://127.0.0.1:8000/#key={key}" in text and text.count("curl -s") == 3
    assert "/shops/tiny/search?q=cordless%20drill" in text and "/shops/tiny/users/u5/recommendations" in text
