"""``GET /shops/{shop}/suggest?q=PREFIX``: suggestions for the storefront's search box."""

from __future__ import annotations

import threading
import time
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, shop_state
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Reader = Annotated[Principal, Depends(require("read"))]
MAX_PREFIX = 100
_services: dict[int, tuple[Any, Any]] = {}
_lock = threading.Lock()


def suggestions_of(state: ShopState) -> Any:
    from shoprank.suggest import ShopSuggestions

    key = id(state.store)
    with _lock:
        hit = _services.get(key)
        if hit is None or hit[0] is not state.store:
            hit = _services[key] = (state.store, ShopSuggestions(state.store))
    return hit[1]


def check_prefix(q: str) -> str:
    text = unicodedata.normalize("NFC", q)
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise ApiError(422, "invalid_parameter", "q contains control characters", "q")
    text = " ".join(text.split())
    if not text:
        raise ApiError(422, "invalid_parameter", "q must hold at least one letter or digit", "q")
    if len(text) > MAX_PREFIX:
        raise ApiError(422, "invalid_parameter", f"q is longer than {MAX_PREFIX} characters", "q")
    return text


@router.get("/shops/{shop}/suggest", responses=ERRORS, tags=["search"])
def suggest(request: Request, shop: str, _: Reader,
            q: Annotated[str, Query(description="what the shopper has typed so far")] = "",
            k: Annotated[int, Query(ge=1, le=20)] = 8) -> Response:
    """Suggestions for a prefix: popular queries that found results, then categories, then product titles;
    one typo in the prefix is forgiven."""
    prefix = check_prefix(q)
    state = shop_state(request, shop)
    started = time.perf_counter()
    found = suggestions_of(state).index().suggest(prefix, k)
    return json_response({"query": prefix, "suggestions": found},
                         timings={"total": time.perf_counter() - started})
