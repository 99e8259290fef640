"""The HTTP app of the serving tests: a tiny shop on the fake engines, a client with a key, and a real server
in a thread for the tests that need a socket (a browser, the CLI, a load generator)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop


def client(app: Any, key: str, **options: Any) -> httpx.AsyncClient:
    """An async client of ``app`` in-process (ASGI), sending ``key``; ``options`` go to httpx (e.g. timeout)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {key}"}, **options)


@contextmanager
def served_tiny(home: Path, name: str = "tiny") -> Iterator[tuple[Any, str]]:
    """The app over ``tiny_shop(home, name)`` on the fake engines, loaded, with an admin key; closed after."""
    tiny_shop(home, name)
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    try:
        yield app, key
    finally:
        app.state.registry.close()


@contextmanager
def threaded_server(home: Path) -> Iterator[tuple[Any, int]]:
    """A real uvicorn server on a free 127.0.0.1 port, in a thread, over ``home``'s shops on the fake engines:
    (app, port) once it listens and its shops are loaded; stopped after."""
    import uvicorn

    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and app.state.registry.ready.is_set()) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield app, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
