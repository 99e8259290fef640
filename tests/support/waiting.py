"""Waiting on state, never on the clock: ``poll(lambda: registry.ready.is_set())`` instead of ``sleep``."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(condition: Callable[[], object], timeout: float = 10.0, every: float = 0.005) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds, checked every ``every`` seconds; the
    timeout only bounds a failing test (a loaded machine makes a passing one slower, never a failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())
