"""Business rules and re-ranking settings of a shop, editable over HTTP (admin keys).

The same rules and settings ``shoprank rules`` edits (stored with the shop); a change is in force from
the next request on. See ``docs/reranking.md`` for what each rule does.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.rerank import RerankConfig, Rule, RuleError, RuleSet, load_config, load_rules, save_config, save_rules
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, read_json, shop_state, storage_error
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Writer = Annotated[Principal, Depends(require("write"))]
RULE_FIELDS = sorted(f.name for f in fields(Rule))
SETTING_FIELDS = sorted(f.name for f in fields(RerankConfig))


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


RULE_SCHEMA = {"type": "object", "properties": {name: {} for name in RULE_FIELDS}, "required": ["action"],
               "description": "a rule: action (pin, boost, bury, hide), where it applies (query, match, "
                              "category) and what it acts on (products, brand, target_category)"}
RULESET_SCHEMA = {"type": "object", "properties": {"hide_out_of_stock": {"type": "boolean"},
                                                   "filters": {"type": "object"},
                                                   "rules": {"type": "array", "items": RULE_SCHEMA}}}
SETTINGS_SCHEMA = {"type": "object", "properties": {name: {} for name in SETTING_FIELDS},
                   "description": "any of the re-ranking settings; the others keep their values"}


def _answer(state: ShopState) -> dict[str, Any]:
    return {"shop": state.name, "rules": load_rules(state.store).to_dict(),
            "settings": load_config(state.store).to_dict(), "settings_error": state.rerank.error}


def _refused(exc: ValueError) -> ApiError:
    field = exc.field if isinstance(exc, RuleError) else None
    return ApiError(422, "invalid_rule", str(exc)[:500], field)


def _save(state: ShopState, write: Any) -> dict[str, Any]:
    with state.write_lock:
        try:
            write(state.store)
        except OSError as exc:  # StoreError and its kinds are OSErrors
            raise storage_error(exc) from None
        state.rerank.refresh()
    return _answer(state)


@router.get("/shops/{shop}/rules", responses=ERRORS, tags=["rules"])
def get_rules(request: Request, shop: str, _: Writer) -> Response:
    """The shop's business rules and re-ranking settings."""
    return json_response(_answer(shop_state(request, shop)))


@router.put("/shops/{shop}/rules", responses=ERRORS, tags=["rules"], openapi_extra=_body(RULESET_SCHEMA))
async def put_rules(request: Request, shop: str, _: Writer) -> Response:
    """Replace the whole rule set (``hide_out_of_stock``, ``filters``, ``rules``); refused whole if any part is bad."""
    data = await read_json(request)
    try:
        ruleset = RuleSet.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise _refused(exc if isinstance(exc, ValueError) else ValueError(str(exc))) from None
    state = await run_in_threadpool(shop_state, request, shop)
    return json_response(await run_in_threadpool(_save, state, lambda store: save_rules(store, ruleset)))


@router.post("/shops/{shop}/rules", responses=ERRORS, tags=["rules"], openapi_extra=_body(RULE_SCHEMA))
async def add_rule(request: Request, shop: str, _: Writer) -> Response:
    """Add one rule (the next free id unless ``id`` is given; a rule with that id is replaced)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send one rule as a JSON object")
    state = await run_in_threadpool(shop_state, request, shop)

    def write(store: Any) -> None:
        ruleset = load_rules(store)
        raw = {"id": ruleset.next_id(), **data}
        try:
            rule = Rule.from_dict(raw)
        except (ValueError, TypeError) as exc:
            raise _refused(exc if isinstance(exc, ValueError) else ValueError(str(exc))) from None
        save_rules(store, ruleset.with_rule(rule))

    return json_response(await run_in_threadpool(_save, state, write))


@router.delete("/shops/{shop}/rules/{rule_id}", responses=ERRORS, tags=["rules"])
def delete_rule(request: Request, shop: str, rule_id: int, _: Writer) -> Response:
    """Remove one rule by id."""
    state = shop_state(request, shop)

    def write(store: Any) -> None:
        try:
            save_rules(store, load_rules(store).without(rule_id))
        except KeyError:
            raise ApiError(404, "rule_not_found", f"shop '{shop}' has no rule {rule_id}", "rule_id") from None

    return json_response(_save(state, write))


@router.put("/shops/{shop}/settings/rerank", responses=ERRORS, tags=["rules"], openapi_extra=_body(SETTINGS_SCHEMA))
async def put_settings(request: Request, shop: str, _: Writer) -> Response:
    """Change re-ranking settings (``diversity``, ``category_cap``, ``explore_share``...); the rest keep theirs."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send the settings to change as a JSON object")
    unknown = sorted(set(data) - set(SETTING_FIELDS) - {"version"})
    if unknown:
        raise ApiError(422, "invalid_setting", f"unknown setting {unknown[0]!r}; valid: {', '.join(SETTING_FIELDS)}",
                       unknown[0])
    state = await run_in_threadpool(shop_state, request, shop)

    def write(store: Any) -> None:
        try:
            config = replace(load_config(store), **{k: v for k, v in data.items() if k != "version"})
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_setting", str(exc)[:500]) from None
        save_config(store, config)

    return json_response(await run_in_threadpool(_save, state, write))
