"""Keys: the store (hashed, revocable, expiring), the CLI, and the key matrix against every endpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from shoprank.cli.main import main
from shoprank.keys import KeyRequestError, KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_keys_are_stored_hashed_and_verified(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    key, record = keys.create("search", "tiny", name="web")
    text = (tmp_path / "keys.json").read_text()
    secret = key.split("_", 2)[2]  # sr_<id>_<secret>; the secret itself may hold "_" (URL-safe base64)
    assert key not in text and secret not in text and record.hash in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert keys.verify(key) == record
    assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.verify("sr_00000000_nothing") is None and keys.verify("") is None
    assert key not in repr(record) and record.hash not in repr(record)


def keys_clock(monkeypatch: pytest.MonkeyPatch, now: float) -> list[float]:
    """The keys module's wall clock, set by the test: ``clock[0] = t`` (no sleeping, no race with the machine)."""
    import shoprank.keys

    clock = [now]
    monkeypatch.setattr(shoprank.keys, "time", SimpleNamespace(time=lambda: clock[0], monotonic=time.monotonic))
    return clock


def test_revoked_and_expired_keys_stop_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyStore(tmp_path)
    key, record = keys.create("admin")
    other = KeyStore(tmp_path)  # a running server's view of the same file
    assert other.verify(key) is not None
    keys.revoke(record.id)
    assert other.verify(key) is None
    clock = keys_clock(monkeypatch, 1_000_000.0)
    soon, _ = keys.create("admin", expires_in=60)
    clock[0] += 59.9
    assert keys.verify(soon) is not None and other.verify(soon) is not None
    clock[0] += 0.1  # the moment it expires
    assert keys.verify(soon) is None and other.verify(soon) is None


@pytest.mark.parametrize(
    ("scope", "shop"), [("admin", "tiny"), ("search", None), ("storefront", None), ("nope", "tiny"), ("search", "A/B")]
)
def test_bad_key_requests(tmp_path: Path, scope: str, shop: str | None) -> None:
    with pytest.raises((KeyRequestError, ValueError)):
        KeyStore(tmp_path).create(scope, shop)


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(tmp_path)]
    assert main(["keys", "create", "--scope", "storefront", "--shop", "tiny", *home]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("sr_") and " " not in key
    assert main(["keys", "list", "--json", *home]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["scope"], k["shop"]) for k in listed] == [("storefront", "tiny")]
    assert key not in json.dumps(listed) and "hash" not in listed[0]
    assert main(["keys", "revoke", listed[0]["id"], *home]) == 0
    capsys.readouterr()
    assert KeyStore(tmp_path).verify(key) is None
    assert main(["keys", "create", "--scope", "search", *home]) == 1  # no --shop
    assert "--shop" in capsys.readouterr().err


ENDPOINTS: list[tuple[str, str, Any, str]] = [
    # method, path, json body, action needed
    ("GET", "/shops/{shop}/search?q=drill", None, "read"),
    ("GET", "/shops/{shop}/users/u1/recommendations", None, "read"),
    ("GET", "/shops/{shop}/products/tools-0-0/similar", None, "read"),
    ("GET", "/shops/{shop}/products/tools-0-0/bought-together", None, "read"),
    ("GET", "/shops/{shop}/products/tools-0-0", None, "read"),
    ("GET", "/shops/{shop}/users", None, "read"),
    ("POST", "/shops/{shop}/events", "event", "events"),
    ("PUT", "/shops/{shop}/products", {"products": [{"id": "k1", "title": "Key Ring"}]}, "write"),
    ("DELETE", "/shops/{shop}/products/kitchen-4-1", None, "write"),
    ("GET", "/shops/{shop}/rules", None, "write"),
    ("PUT", "/shops/{shop}/rules", {"rules": [{"id": 90, "action": "bury", "products": ["tools-0-0"],
                                               "amount": 0.1}]}, "write"),
    ("DELETE", "/shops/{shop}/rules/90", None, "write"),
    ("POST", "/shops/{shop}/rules", {"action": "hide", "products": ["tools-0-1"]}, "write"),
    ("PUT", "/shops/{shop}/settings/rerank", {"diversity": 0.3}, "write"),
    ("GET", "/shops/{shop}/settings/search", None, "write"),
    ("PUT", "/shops/{shop}/settings/search", {"closest_on_empty": 3}, "write"),
    ("POST", "/admin/reload", None, "admin"),
    ("GET", "/admin/status", None, "admin"),
    ("GET", "/metrics", None, "admin"),
    ("GET", "/shops", None, "any"),
]
ALLOWED = {
    "admin": {"read", "events", "write", "admin", "any"},
    "search": {"read", "any"},
    "storefront": {"read", "events", "any"},
}


@pytest.fixture(scope="module")
def matrix_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("keys")
    tiny_shop(home, "tiny")
    tiny_shop(home, "other")
    store = KeyStore(home)
    keys = {
        "admin": store.create("admin")[0],
        "search": store.create("search", "tiny")[0],
        "storefront": store.create("storefront", "tiny")[0],
        "other-shop": store.create("storefront", "other")[0],
    }
    with pytest.MonkeyPatch.context() as patch:  # created an hour ago with a minute to live: expired now
        keys_clock(patch, time.time() - 3600)
        keys["expired"] = store.create("admin", expires_in=60)[0]
    revoked, record = store.create("admin")
    store.revoke(record.id)
    keys["revoked"] = revoked
    keys["wrong"] = keys["admin"][:-4] + "AAAA"
    return home, keys


def _request(method: str, path: str, body: Any) -> tuple[str, str, Any]:
    if body == "event":
        body = {"events": [{"event_id": f"m-{time.time_ns()}", "user_id": "u1", "item_id": "tools-0-0",
                            "type": "click", "timestamp": time.time() - 1}]}
    return method, path.replace("{shop}", "tiny"), body


@pytest.mark.parametrize(("method", "path", "body", "action"), ENDPOINTS)
async def test_key_matrix(matrix_home: tuple[Path, dict[str, str]], method: str, path: str, body: Any,
                          action: str) -> None:
    home, keys = matrix_home
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    method, path, body = _request(method, path, body)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        async def call(key: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
            return await c.request(method, path, json=body, headers=headers)

        for name in ("none", "wrong", "expired", "revoked"):
            answer = await call(None if name == "none" else keys[name])
            assert answer.status_code == 401, (name, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert answer.json()["error"]["code"] in {"missing_key", "invalid_key"}
        malformed = await c.request(method, path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert malformed.status_code == 401
        other = await call(keys["other-shop"])
        if action in {"any"}:
            assert other.status_code == 200
        else:
            assert other.status_code == 403, other.text
        for scope in ("search", "storefront", "admin"):
            answer = await call(keys[scope])
            if action in ALLOWED[scope]:
                assert answer.status_code < 300, (scope, answer.text)
            else:
                assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden", scope
    app.state.registry.close()


async def test_shops_lists_only_what_the_key_reads(matrix_home: tuple[Path, dict[str, str]]) -> None:
    home, keys = matrix_home
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        mine = await c.get("/shops", headers={"Authorization": f"Bearer {keys['search']}"})
        every = await c.get("/shops", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert [s["name"] for s in mine.json()["shops"]] == ["tiny"]
    assert [s["name"] for s in every.json()["shops"]] == ["other", "tiny"]


async def test_open_access_needs_no_key_and_says_so(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "tiny")
    app = create_app(tmp_path, open_access=True, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        health = (await c.get("/health")).json()
        search = await c.get("/shops/tiny/search", params={"q": "drill"})
    assert health["open_access"] is True and search.status_code == 200


async def test_only_health_and_static_answer_without_a_key(tmp_path: Path) -> None:
    tiny_shop(tmp_path, "tiny")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    schema = app.openapi()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        for path, methods in schema["paths"].items():
            for method in methods:
                url = path.replace("{shop}", "tiny").replace("{user_id}", "u1").replace("{product_id}", "tools-0-0")
                answer = await c.request(method.upper(), url)
                expected = 200 if path == "/health" else 401
                assert answer.status_code == expected, (method, path, answer.text)
