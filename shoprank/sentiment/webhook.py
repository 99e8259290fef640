"""Alerts posted to the shop's webhook (setting ``sentiment.webhook``: ``{"url": ..., "timeout_s": 5}``).

Each alert is POSTed as JSON; a timeout, a connection error or a status >= 500 (and 429) is retried with
exponential back-off (0.5 s, 1 s, 2 s, ...) up to ``attempts`` tries, a 4xx other than 429 is not. Delivery
runs on its own thread (:class:`WebhookWorker`), so storing reviews never waits for it; the outcome of each
alert (delivered, attempts, last error) is kept with the alert.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("shoprank.sentiment.webhook")


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    timeout_s: float = 5.0
    attempts: int = 4
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the webhook url must start with http:// or https://, got {self.url[:60]!r}")
        if self.timeout_s <= 0 or self.attempts < 1 or self.backoff_s < 0:
            raise ValueError("need timeout_s > 0, attempts >= 1 and backoff_s >= 0")

    @classmethod
    def from_setting(cls, value: Any) -> WebhookConfig | None:
        if value is None:
            return None
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, dict) or "url" not in value:
            raise ValueError('the sentiment.webhook setting must be a URL or {"url": ..., "timeout_s": ...}')
        return cls(**value)


def deliver(config: WebhookConfig, alert: dict[str, Any], sleep: Callable[[float], None] = time.sleep
            ) -> tuple[bool, int, str | None]:
    """POST one alert; returns (delivered, attempts made, last error)."""
    import httpx

    error: str | None = None
    body = {"type": "sentiment_alert", "alert": alert}
    for attempt in range(1, config.attempts + 1):
        try:
            response = httpx.post(config.url, json=body, timeout=config.timeout_s)
            if response.status_code < 300:
                return True, attempt, None
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                return False, attempt, error  # the receiver refuses it: retrying will not help
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        if attempt < config.attempts:
            sleep(config.backoff_s * 2 ** (attempt - 1))
    log.warning("webhook %s: alert %s not delivered after %d attempts (%s)", config.url, alert.get("scope"),
                config.attempts, error)
    return False, config.attempts, error


class WebhookWorker:
    """A daemon thread running submitted jobs one after another (detection, then delivery)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="shoprank-alerts", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a failing job must not kill the worker
                log.exception("alert job failed")
            finally:
                self._jobs.task_done()

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted job ran (tests, shutdown); True when the queue drained in time."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._jobs.unfinished_tasks

    def close(self) -> None:
        self._jobs.put(None)


def deliver_new(store: Any, alerts: list[dict[str, Any]], sleep: Callable[[float], None] = time.sleep) -> int:
    """Post each new alert to the shop's webhook (if one is set) and record the outcome; returns delivered."""
    config = WebhookConfig.from_setting(store.get_setting("sentiment.webhook"))
    if config is None:
        return 0
    delivered = 0
    for alert in alerts:
        ok, attempts, error = deliver(config, alert, sleep)
        store.mark_alert(alert["scope"], alert["at_epoch"], ok, attempts, error)
        delivered += ok
    return delivered
