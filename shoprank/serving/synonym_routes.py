"""A shop's synonyms: ``GET``/``PUT /shops/{shop}/synonyms`` and ``GET /shops/{shop}/synonyms/suggested`` (mined
from the log for a merchandiser to accept)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, read_json, shop_state, storage_error
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
CACHE_SECONDS = 2.0
_cache: dict[int, tuple[float, Any, Any]] = {}

SYNONYMS_SCHEMA = {"type": "object", "required": ["synonyms"],
                   "properties": {"synonyms": {"type": "array", "items": {},
                                               "description": "'couch, sofa, settee' (multi-way) or "
                                                              "'tv => television' (one-way)"},
                                  "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                             "description": "BM25 weight of the terms synonyms add (typed "
                                                            "terms: 1); the default when absent"}}}


def synonyms_of(state: ShopState) -> Any:
    """The shop's synonyms as stored (re-read every few seconds; bad stored ones: none)."""
    from shoprank.synonyms import SynonymError, Synonyms, load_synonyms

    key = id(state.store)
    hit = _cache.get(key)
    if hit is None or hit[1] is not state.store or time.monotonic() - hit[0] > CACHE_SECONDS:
        try:
            synonyms = load_synonyms(state.store)
        except SynonymError:
            synonyms = Synonyms()
        hit = _cache[key] = (time.monotonic(), state.store, synonyms)
    return hit[2]


def with_synonyms(state: ShopState, engine: Any) -> Any:
    """``engine`` with the shop's synonyms applied to its queries (itself when the shop has none)."""
    synonyms = synonyms_of(state)
    if not synonyms:
        return engine
    from shoprank.synonyms.engine import WithSynonyms

    return WithSynonyms(engine, synonyms)


@router.get("/shops/{shop}/synonyms", responses=ERRORS, tags=["search"])
def get_synonyms(request: Request, shop: str, _: Reader) -> Response:
    """The shop's synonym rules."""
    return json_response({"shop": shop, **synonyms_of(shop_state(request, shop)).to_dict()})


@router.put("/shops/{shop}/synonyms", responses=ERRORS, tags=["search"],
            openapi_extra={"requestBody": {"required": True,
                                           "content": {"application/json": {"schema": SYNONYMS_SCHEMA}}}})
async def put_synonyms(request: Request, shop: str, _: Writer) -> Response:
    """Replace the shop's synonyms whole, and the weight their added terms count with (refused whole, naming the
    rule or ``weight``, when any is bad)."""
    from shoprank.synonyms import SynonymError, Synonyms, save_synonyms

    data = await read_json(request, records=True)  # NaN / Infinity reach the checks, which name the field
    try:
        synonyms = Synonyms.from_dict(data)
    except SynonymError as exc:
        raise ApiError(422, "invalid_synonyms", exc.message[:500], exc.field) from None
    state = await run_in_threadpool(shop_state, request, shop)

    def save() -> None:
        try:
            save_synonyms(state.store, synonyms)
        except OSError as exc:
            raise storage_error(exc) from None
        _cache.pop(id(state.store), None)

    await run_in_threadpool(save)
    return json_response({"shop": shop, **synonyms.to_dict()})


@router.get("/shops/{shop}/synonyms/suggested", responses=ERRORS, tags=["search"])
def suggested(request: Request, shop: str, _: Reader) -> Response:
    """Synonyms mined from the last 90 days of searches (reformulations, shared clicks), with their evidence."""
    from shoprank.synonyms import mine_synonyms

    state = shop_state(request, shop)
    outcomes = state.store.impression_outcomes(since=time.time() - 90 * 86_400, surfaces=["search"])
    return json_response({"shop": shop, "suggested": mine_synonyms(outcomes, synonyms_of(state))})
