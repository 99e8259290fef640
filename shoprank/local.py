"""A running server, found by the command line on the same machine, so ``shoprank search`` and friends answer
from engines already loaded instead of loading them for every call.

``shoprank serve`` writes ``<home>/server.json`` (mode 0600: the address, the process id and a random token) and
removes it on exit. The token is a read-only credential of this server alone: whoever can read the home folder
could read the store anyway. :func:`find_server` checks that the process is alive and answers ``/health``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

SERVER_FILE = "server.json"


def announce(home: str | Path, host: str, port: int) -> str:
    """Write the server file for this process; returns the token the server must accept."""
    token = "local_" + secrets.token_urlsafe(24)
    where = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    path = Path(home) / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": f"http://{where}:{port}", "pid": os.getpid(), "token": token}, handle)
    os.replace(temporary, path)
    return token


def withdraw(home: str | Path, token: str) -> None:
    """Remove the server file if it is still this server's."""
    path = Path(home) / SERVER_FILE
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def find_server(home: str | Path, timeout: float = 0.5) -> tuple[str, str] | None:
    """(url, token) of a live server for ``home``, or None."""
    path = Path(home) / SERVER_FILE
    try:
        info = json.loads(path.read_text())
        url, pid, token = str(info["url"]), int(info["pid"]), str(info["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    import httpx

    try:
        health = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    return (url, token) if health.status_code == 200 else None
