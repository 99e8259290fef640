"""API keys: created once, shown once, stored hashed, compared in constant time.

A key looks like ``sr_<id>_<secret>``: ``id`` is 8 hex characters that name the key in
listings and logs, ``secret`` is 32 random bytes (URL-safe base64). The key file
(``<home>/keys.json``, mode 0600) keeps only ``sha256(key)``; the key itself is printed
once by ``shoprank keys create`` and never again. With a shared PostgreSQL store the records
live in its ``api_keys`` table instead, so every replica knows every key; a running server
re-reads them at most every ``SHARED_REFRESH_S`` seconds.

Scopes:

- ``admin``: every endpoint of every shop (reads, writes, reloads, metrics);
- ``search``: read-only for one shop (search, recommendations, similar items, products);
- ``storefront``: what a shop's public page needs for one shop: ``search`` plus posting events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoprank.shops import check_shop_name, default_home
from shoprank.store import backend_for

KEYS_FILE = "keys.json"
SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "events", "write", "admin"}),
    "search": frozenset({"read"}),
    "storefront": frozenset({"read", "events"}),
}
"""Scope -> the actions it allows. Every scope but ``admin`` is bound to one shop."""

_PREFIX = "sr_"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
SHARED_REFRESH_S = 1.0
"""How stale a replica's view of the shared key table may be (a key created or revoked elsewhere)."""


class KeyRequestError(ValueError):
    """A key request that cannot be honoured (bad scope, missing shop, unknown id)."""


@dataclass(frozen=True)
class ApiKey:
    """What is stored about a key: never the key itself."""

    id: str
    scope: str
    shop: str | None
    hash: str
    created_at: float
    name: str = ""
    expires_at: float | None = None
    revoked_at: float | None = None

    def allows(self, action: str, shop: str | None) -> bool:
        if action not in SCOPES.get(self.scope, frozenset()):
            return False
        return self.scope == "admin" or (shop is not None and shop == self.shop)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The key's description without its hash, for listings."""
        info = asdict(self)
        info.pop("hash")
        return info

    def __repr__(self) -> str:  # never show the hash either
        return f"ApiKey(id={self.id!r}, scope={self.scope!r}, shop={self.shop!r})"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    if not key.startswith(_PREFIX):
        return None
    parts = key[len(_PREFIX):].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != 8 or not parts[1]:
        return None
    return parts[0]


class KeyStore:
    """The keys of one deployment: the home folder's key file, or the shared store's key table.

    Safe to share between threads; re-reads the file when it changes, the table every ``SHARED_REFRESH_S``."""

    def __init__(self, home: str | Path | None = None, store: str | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.path = self.home / KEYS_FILE
        self._shared = backend_for(self.home, store).key_records()
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: Any = None

    # reading ------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def _refresh(self, force: bool = False) -> None:
        if self._shared is not None:
            if force or self._stamp is None or time.monotonic() - self._stamp >= SHARED_REFRESH_S:
                self._keys = {row["id"]: ApiKey(**row) for row in self._shared.load()}
                self._stamp = time.monotonic()
            return
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        keys: dict[str, ApiKey] = {}
        if stamp is not None:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for row in data.get("keys", []):
                keys[row["id"]] = ApiKey(**row)
        self._keys = keys
        self._stamp = stamp

    def list_keys(self) -> list[ApiKey]:
        with self._lock:
            self._refresh()
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def verify(self, key: str) -> ApiKey | None:
        """The live key record for ``key``, or None (unknown, revoked or expired). Constant time in the secret."""
        with self._lock:
            self._refresh()
            record = self._keys.get(key_id(key) or "")
        expected = record.hash if record is not None else _DUMMY_HASH
        matches = hmac.compare_digest(hash_key(key), expected)
        if record is None or not matches or record.revoked_at is not None or record.expired():
            return None
        return record

    # writing ------------------------------------------------------------------------------
    def _write(self, keys: dict[str, ApiKey], changed: ApiKey) -> None:
        if self._shared is not None:
            self._shared.save(asdict(changed))
            self._keys = keys
            return
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{KEYS_FILE}.{os.getpid()}.tmp")
        payload = json.dumps({"format_version": 1, "keys": [asdict(k) for k in keys.values()]}, indent=2)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._keys = keys
        self._stamp = self._file_stamp()

    def create(
        self, scope: str, shop: str | None = None, *, name: str = "", expires_in: float | None = None
    ) -> tuple[str, ApiKey]:
        """A new key: returns ``(key, record)``. The key is shown only here."""
        if scope not in SCOPES:
            raise KeyRequestError(f"unknown scope {scope!r}; valid scopes: {', '.join(SCOPES)}")
        if scope == "admin":
            if shop is not None:
                raise KeyRequestError("an admin key covers every shop; leave out --shop")
        elif shop is None:
            raise KeyRequestError(f"a {scope} key is bound to one shop; add --shop NAME")
        else:
            check_shop_name(shop)
        if expires_in is not None and expires_in <= 0:
            raise KeyRequestError("the expiry must lie in the future")
        with self._lock:
            self._refresh(force=True)
            keys = dict(self._keys)
            ident = secrets.token_hex(4)
            while ident in keys:
                ident = secrets.token_hex(4)
            key = f"{_PREFIX}{ident}_{secrets.token_urlsafe(32)}"
            now = time.time()
            record = ApiKey(
                id=ident, scope=scope, shop=shop, hash=hash_key(key), created_at=now, name=name,
                expires_at=None if expires_in is None else now + expires_in,
            )
            keys[ident] = record
            self._write(keys, record)
        return key, record

    def revoke(self, ident: str) -> ApiKey:
        """Revoke a key by its id (or the whole key); it stops working at once, also in a running server."""
        ident = key_id(ident) or ident
        with self._lock:
            self._refresh(force=True)
            record = self._keys.get(ident)
            if record is None:
                raise KeyRequestError(f"no key with id {ident!r}; 'shoprank keys list' shows them")
            if record.revoked_at is None:
                keys = dict(self._keys)
                record = ApiKey(**{**asdict(record), "revoked_at": time.time()})
                keys[ident] = record
                self._write(keys, record)
        return record


__all__ = ["SCOPES", "ApiKey", "KeyRequestError", "KeyStore", "hash_key"]
