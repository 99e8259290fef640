"""Write endpoints: events (append, idempotent by event_id) and products (upsert, delete).

A batch is validated whole first: one bad record refuses the batch, names every bad record and field,
and stores nothing. A write is answered only once it is durable (the store fsyncs its commit).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.data.attribution import AttributionReport, attribute
from shoprank.data.records import RecordError, parse_event, parse_product, product_fields, unknown_product
from shoprank.data.upsert import ProductUpdate, resolve
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import batch_of, check_id, json_response, read_json, shop_state, storage_error
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState, apply_to_engines, sync_shop
from shoprank.serving.schemas import ERRORS, EventsAnswer, EventsBody, ProductsAnswer, ProductsBody

router = APIRouter()
MAX_REPORTED = 100


def _body_doc(model: type) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _refuse(problems: list[dict[str, Any]], name: str, total: int) -> ApiError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ApiError(422, "invalid_record", f"{first['field']}: {first['message']}{more}; nothing of the {total} "
                    f"{name} was stored", first["field"], details=problems[:MAX_REPORTED])


def _parse(rows: list[Any], name: str, parser: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    records: list[Any] = []
    problems: list[dict[str, Any]] = []
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            problems.append({"index": i, "field": f"{name}[{i}]", "message": "must be a JSON object"})
            continue
        try:
            records.append(parser(raw))
        except RecordError as exc:
            problems.append({"index": i, "field": f"{name}[{i}].{exc.field}", "message": exc.message})
    return records, problems


def _store_events(state: ShopState, rows: list[Any], impressions: Any = None) -> dict[str, Any]:
    events, problems = _parse(rows, "events", parse_event)
    if not problems:
        sync_shop(state)
        known = state.catalog
        for i, event in enumerate(events):
            if event.item_id not in known:
                problems.append({"index": i, "field": f"events[{i}].item_id",
                                 "message": unknown_product(event.item_id).message})
    if problems:
        raise _refuse(problems, "events", len(rows))
    report = AttributionReport()
    if any(e.request_id for e in events):  # tie events to the answers they came from; never refuses one
        def lookup(ids: list[str]) -> dict[str, Any]:
            if impressions is not None:
                return impressions.lookup(state.name, ids, state.store)
            return state.store.get_impressions(ids)

        try:
            events, report = attribute(events, lookup)
        except OSError:  # StoreError: the impressions cannot be read now: store the events unattributed
            report.unattributed["store_unavailable"] = sum(1 for e in events if e.request_id)
            events = [replace(e, request_id=None) for e in events]
    try:
        result = state.store.append_events(events)
    except OSError as exc:  # StoreError and its kinds are OSErrors
        raise storage_error(exc) from None
    answer: dict[str, Any] = {"stored": result.stored, "duplicates": result.duplicates}
    if report.attributed or report.unattributed:  # said only when the batch carried request ids
        answer.update(attributed=report.attributed, unattributed=sum(report.unattributed.values()))
    answer["_reasons"] = report.unattributed
    return answer


@router.post("/shops/{shop}/events", response_model=EventsAnswer, responses=ERRORS, tags=["events"],
             openapi_extra=_body_doc(EventsBody))
async def post_events(request: Request, shop: str, _: Annotated[Principal, Depends(require("events"))]) -> Response:
    """Append a batch of events. Retrying with the same ``event_id`` stores nothing twice."""
    data = await read_json(request, records=True)
    rows = batch_of(data, "events", request.app.state.config.max_batch)
    state = await run_in_threadpool(shop_state, request, shop)
    answer = await run_in_threadpool(_store_events, state, rows, getattr(request.app.state, "impressions", None))
    metrics = request.app.state.metrics
    metrics.count("events_stored", answer["stored"])
    if answer.get("attributed"):
        metrics.count("events_attributed", answer["attributed"])
    for reason, n in answer.pop("_reasons").items():
        metrics.count(f"events_unattributed_{reason}", n)
    return json_response(answer)


def _parse_update(raw: dict[str, Any]) -> ProductUpdate:
    return ProductUpdate(parse_product(raw), product_fields(raw))


def _write_products(state: ShopState, rows: list[Any], delete: list[Any], replace: bool = False) -> dict[str, int]:
    updates: list[ProductUpdate]
    updates, problems = _parse(rows, "products", _parse_update)
    ids: list[str] = []
    for i, raw in enumerate(delete):
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            problems.append({"index": i, "field": f"delete[{i}]", "message": "must be a product id (text)"})
            continue
        try:
            ids.append(check_id(str(raw), f"delete[{i}]"))
        except ApiError as exc:
            problems.append({"index": i, "field": f"delete[{i}]", "message": exc.message})
    if problems:
        raise _refuse(problems, "records", len(rows) + len(delete))
    with state.write_lock:
        try:
            products = resolve(state.store, updates, replace=replace)
            stored = state.store.upsert_products(products) if products else None
            deleted = state.store.delete_products(ids) if ids else 0
        except OSError as exc:  # StoreError and its kinds are OSErrors
            raise storage_error(exc) from None
        changed, gone = state.catalog.sync()
        apply_to_engines(state, changed, gone)  # searchable when this call returns (write_lock is held)
    return {
        "stored": stored.stored if stored else 0,
        "updated": stored.updated if stored else 0,
        "deleted": deleted,
        "catalog_version": state.catalog.version,
    }


@router.put("/shops/{shop}/products", response_model=ProductsAnswer, responses=ERRORS, tags=["catalogue"],
            openapi_extra=_body_doc(ProductsBody))
async def put_products(
    request: Request, shop: str, _: Annotated[Principal, Depends(require("write"))],
    replace: Annotated[bool, Query(description="each record replaces the stored product whole (default: merge: "
                                   "fields and attributes a record does not send keep their stored values)")] = False,
) -> Response:
    """Upsert products (by id) and delete ids; both are searchable / gone when the call returns."""
    data = await read_json(request, records=True)
    limit = request.app.state.config.max_batch
    rows = batch_of(data, "products", limit, required=False)
    delete = batch_of(data, "delete", limit, required=False)
    if not rows and not delete:
        raise ApiError(400, "invalid_body", "send {\"products\": [...]} and/or {\"delete\": [ids]}", "products")
    if len(rows) + len(delete) > limit:
        raise ApiError(413, "batch_too_large", f"{len(rows) + len(delete)} records; the limit is {limit} per request")
    state = await run_in_threadpool(shop_state, request, shop)
    answer = await run_in_threadpool(_write_products, state, rows, delete, replace)
    request.app.state.metrics.count("products_written", answer["stored"] + answer["updated"] + answer["deleted"])
    return json_response(answer)


@router.delete("/shops/{shop}/products/{product_id:path}", responses=ERRORS, tags=["catalogue"])
def delete_product(
    request: Request, shop: str, product_id: str, _: Annotated[Principal, Depends(require("write"))]
) -> Response:
    """Delete one product; it leaves search and recommendations when the call returns."""
    state = shop_state(request, shop)
    item = check_id(product_id, "product_id")
    answer = _write_products(state, [], [item])
    if not answer["deleted"]:
        raise ApiError(404, "product_not_found", f"shop '{shop}' has no product '{item[:100]}'", "product_id")
    return json_response({"deleted": 1, "catalog_version": answer["catalog_version"]})


@router.delete("/shops/{shop}/users/{user_id}", responses=ERRORS, tags=["events"])
def delete_user(
    request: Request, shop: str, user_id: str, _: Annotated[Principal, Depends(require("write"))]
) -> Response:
    """Delete everything stored about a user (a privacy request): their events, so personalisation forgets them
    at once, and any other per-user records. Deleting a user with nothing stored answers zeros."""
    state = shop_state(request, shop)
    user = check_id(user_id, "user_id")
    impressions = getattr(request.app.state, "impressions", None)
    if impressions is not None:  # impressions still queued must land before the delete, not after it
        impressions.flush()
    try:
        removed = state.store.delete_user(user)
    except OSError as exc:  # StoreError and its kinds are OSErrors
        raise storage_error(exc) from None
    from shoprank.serving import read_routes

    read_routes.forget_user(state, user)
    return json_response({"user_id": user, "deleted": removed})
