"""A shop's search settings over HTTP (``closest_on_empty``...): read and change them (keys with ``write``).

The same settings ``shoprank settings search`` edits (:mod:`shoprank.search.settings`, stored with the shop);
a change is in force from the next request on, on every replica (each empty answer reads them from the store).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.search.settings import SearchSettings, SettingError, load_search_settings, save_search_settings
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, read_json, shop_state, storage_error
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Writer = Annotated[Principal, Depends(require("write"))]
SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {f.name: {"type": "integer"} for f in fields(SearchSettings)},
    "description": "any of the search settings; the others keep their values. closest_on_empty: how many "
                   "products closest in meaning an answer with no match shows, marked as not matching (0 = none)",
}


def _answer(state: ShopState) -> dict[str, Any]:
    settings = load_search_settings(state.store).to_dict()
    settings.pop("version")
    return {"shop": state.name, "settings": settings}


@router.get("/shops/{shop}/settings/search", responses=ERRORS, tags=["rules"])
def get_search_settings(request: Request, shop: str, _: Writer) -> Response:
    """The shop's search settings."""
    return json_response(_answer(shop_state(request, shop)))


@router.put("/shops/{shop}/settings/search", responses=ERRORS, tags=["rules"],
            openapi_extra={"requestBody": {"required": True,
                                           "content": {"application/json": {"schema": SETTINGS_SCHEMA}}}})
async def put_search_settings(request: Request, shop: str, _: Writer) -> Response:
    """Change search settings (``closest_on_empty``); the rest keep theirs. Refused whole (422 naming the
    setting) if any is unknown or out of range: nothing is stored then."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send the settings to change as a JSON object, e.g. "
                                            '{"closest_on_empty": 5}')
    state = await run_in_threadpool(shop_state, request, shop)

    def write() -> dict[str, Any]:
        with state.write_lock:
            try:
                settings = load_search_settings(state.store).updated(data)
            except SettingError as exc:
                raise ApiError(422, "invalid_setting", str(exc)[:500], exc.field) from None
            try:
                save_search_settings(state.store, settings)
            except OSError as exc:  # StoreError and its kinds are OSErrors
                raise storage_error(exc) from None
        return _answer(state)

    return json_response(await run_in_threadpool(write))
