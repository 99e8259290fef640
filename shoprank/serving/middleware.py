"""One plain ASGI layer in front of the app: bounded admission, body size limit, request metrics.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so that it adds microseconds, not a task per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoprank.serving.config import ServingConfig
from shoprank.serving.errors import ApiError, error_body
from shoprank.serving.metrics import Metrics

log = logging.getLogger("shoprank.serving")

EXEMPT = frozenset({"/health", "/metrics"})
"""Paths that are always admitted: probes must answer even under overload."""


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"the request body is over the limit of {limit} bytes")


async def send_error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = error_body(code, message)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class ServingMiddleware:
    def __init__(self, app: ASGIApp, *, config: ServingConfig, metrics: Metrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"]
        state: dict[str, Any] = {"status": 500, "started": False}
        try:
            if scope["path"] not in EXEMPT and self.in_flight >= self.config.max_in_flight:
                self.metrics.count("rejected_overload")
                state["status"] = 503
                await send_error(send, 503, "overloaded", "the server is at capacity; retry shortly",
                                 {"Retry-After": str(self.config.retry_after_seconds)})
                return
            limit = self.config.max_body_bytes
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                state["status"] = 413
                await send_error(send, 413, "body_too_large",
                                 f"the request body is {declared} bytes; the limit is {limit} bytes")
                return
            await self._admitted(scope, receive, send, state, limit)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(endpoint, method, state["status"], time.perf_counter() - start)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], limit: int) -> None:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        self.in_flight += 1
        self.metrics.in_flight = self.in_flight
        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if state["started"]:
                raise
            state["status"] = 413
            await send_error(send, 413, "body_too_large", f"the request body is over the limit of {limit} bytes")
        finally:
            self.in_flight -= 1
            self.metrics.in_flight = self.in_flight


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
