"""The in-process HTTP app of the serving tests: a tiny shop on the fake engines, and a client with a key."""

from __future__ import annotations

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
