"""Helpers shared by the route modules: shop lookup, engine lookup, id checks, JSON answers, bodies."""

from __future__ import annotations

import json
import time
import unicodedata
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.cascade.base import clean_query  # noqa: F401  (one query cleaning for the cascade and the routes)
from shoprank.data.limits import LIMITS
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import EngineRegistry, ShopNotFound, ShopState

JSON_TYPES = ("application/json", "text/json")


def registry_of(request: Request) -> EngineRegistry:
    return request.app.state.registry


def shop_state(request: Request, shop: str) -> ShopState:
    """The open shop, or a 400 (bad name) / 404 (no such shop) / 503 (still loading at start-up)."""
    registry = registry_of(request)
    if not registry.ready.is_set() and not registry.is_open(shop):
        raise ApiError(503, "unavailable", "the server is still loading the shops' models; retry shortly",
                       headers={"Retry-After": "5"})
    try:
        return registry.get(shop)
    except ShopNotFound:
        raise ApiError(404, "shop_not_found", f"there is no shop '{shop}'", "shop") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)[:300], "shop") from None


def engine_of(state: ShopState, kind: str) -> Any:
    """The engine serving ``kind`` now: take it once and use that reference for the whole request."""
    slot = state.slots[kind]
    if slot.engine is not None:
        return slot.engine
    if slot.state == "missing" and state.on_missing is not None:  # products may have arrived: the baseline
        slot = state.on_missing(kind)
        if slot.engine is not None:
            return slot.engine
    if slot.state == "failed":
        raise ApiError(503, "model_unavailable", f"shop '{state.name}': the {kind} model failed to load: {slot.error}",
                       headers={"Retry-After": "30"})
    raise ApiError(409, f"no_{kind}_model", slot.error or f"shop '{state.name}' has no {kind} model")


def check_id(value: str, field: str) -> str:
    """An id from a path or query: NFC, at most the contract's bytes, no control characters."""
    text = unicodedata.normalize("NFC", value)
    if not text.strip():
        raise ApiError(422, "invalid_parameter", f"{field} must not be empty", field)
    if len(text.encode("utf-8")) > LIMITS.max_id_bytes:
        raise ApiError(422, "invalid_parameter", f"{field} is longer than {LIMITS.max_id_bytes} bytes", field)
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise ApiError(422, "invalid_parameter", f"{field} contains control characters", field)
    return text


def json_response(payload: Any, status: int = 200, timings: dict[str, float] | None = None) -> Response:
    start = time.perf_counter()
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    headers = {}
    if timings is not None:
        timings["encode"] = time.perf_counter() - start
        headers["Server-Timing"] = ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in timings.items())
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def read_json(request: Request, *, records: bool = False) -> Any:
    """The request body as JSON; size was already bounded by the middleware.

    ``records``: a batch of data-contract records, whose ``NaN`` / ``Infinity`` the record parser refuses
    naming the field (as ``shoprank ingest`` does); elsewhere they refuse the body at once."""
    from shoprank.data.records import json_constant

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in JSON_TYPES and not kind.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", f"send JSON (Content-Type: application/json), not {kind[:60]}")
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")

    def parse() -> Any:
        try:
            return json.loads(body, parse_constant=json_constant if records else _no_constant)
        except RecursionError:
            raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_json", "the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at "
                           f"line {exc.lineno} column {exc.colno}") from None

    return await run_in_threadpool(parse) if len(body) > 64_000 else parse()


def _no_constant(name: str) -> Any:
    raise ApiError(400, "invalid_json", f"the body is not valid JSON: {name} is not a JSON number")


def batch_of(data: Any, name: str, limit: int, *, required: bool = True) -> list[Any]:
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", f"the body must be a JSON object with a '{name}' list", name)
    value = data.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "invalid_body", f"'{name}' must be a list", name)
    if len(value) > limit:
        raise ApiError(413, "batch_too_large", f"'{name}' holds {len(value)} records; the limit is {limit} per "
                       "request", name)
    return value


def storage_error(exc: OSError) -> ApiError:
    from shoprank.store import StoreFullError, StoreUnavailableError

    text = str(exc).lower()
    full = "full" in text and not isinstance(exc, StoreUnavailableError)
    if isinstance(exc, StoreFullError) or full or getattr(exc, "errno", None) == 28:
        return ApiError(507, "storage_full", "the disk is full; nothing of this request was stored")
    return ApiError(503, "storage_unavailable", "the store is busy or unreachable; nothing of this request was "
                    "stored; retry",
                    headers={"Retry-After": "1"})
