"""Reviews, sentiment trends and alerts, and the analytics page.

``POST /shops/{shop}/reviews`` stores a batch whole or not at all (a review of a product the shop does not
know is stored and flagged in the answer); alert detection and webhook delivery then run on a background
worker, so the answer never waits for them.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from shoprank.data.records import parse_review
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import batch_of, check_id, json_response, read_json, shop_state, storage_error
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS
from shoprank.serving.write_routes import _parse, _refuse

router = APIRouter()
STATIC = Path(__file__).resolve().parent / "static"
_WORKER_LOCK = threading.Lock()


def alert_worker(request: Request) -> Any:
    """The app's one background worker for alert detection and webhook delivery (started on first use)."""
    from shoprank.sentiment.webhook import WebhookWorker

    state = request.app.state
    with _WORKER_LOCK:
        if getattr(state, "sentiment_worker", None) is None:
            state.sentiment_worker = WebhookWorker()
    return state.sentiment_worker


def _service(state: ShopState) -> Any:
    from shoprank.sentiment.service import ShopSentiment

    return ShopSentiment(state.store, state.shop.models_path)


def _check_and_deliver(state: ShopState) -> None:
    from shoprank.sentiment.webhook import deliver_new

    deliver_new(state.store, _service(state).refresh_alerts())


def _store_reviews(state: ShopState, rows: list[Any]) -> dict[str, Any]:
    reviews, problems = _parse(rows, "reviews", parse_review)
    if problems:
        raise _refuse(problems, "reviews", len(rows))
    try:
        result = state.store.upsert_reviews(reviews)
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc) from None
    unknown = sorted({r.product_id for r in reviews} - {p.id for p in state.store.get_products(
        sorted({r.product_id for r in reviews})) if p})
    return {"stored": result.stored, "updated": result.updated, "duplicates": result.duplicates,
            "flagged": result.flagged, "unknown_products": unknown[:100]}


@router.post("/shops/{shop}/reviews", responses=ERRORS, tags=["reviews"])
async def post_reviews(request: Request, shop: str, _: Annotated[Principal, Depends(require("write"))]) -> Response:
    """Store reviews (upserted by ``review_id``). Reviews of unknown products are stored and counted in
    ``flagged`` (their ids in ``unknown_products``). Alerts are checked afterwards, in the background."""
    data = await read_json(request)
    rows = batch_of(data, "reviews", request.app.state.config.max_batch)
    state = await run_in_threadpool(shop_state, request, shop)
    answer = await run_in_threadpool(_store_reviews, state, rows)
    if answer["stored"] or answer["updated"]:
        alert_worker(request).submit(lambda: _check_and_deliver(state))
    return json_response(answer)


@router.get("/shops/{shop}/sentiment", responses=ERRORS, tags=["reviews"])
async def get_sentiment(
    request: Request, shop: str, _: Annotated[Principal, Depends(require("read"))],
    product_id: str | None = None, category: str | None = None, topic: str | None = None,
    interval: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
) -> Response:
    """Reviews per class, negative share and mean score per interval (weeks start on Monday, UTC)."""
    for name, value in (("product_id", product_id), ("category", category), ("topic", topic)):
        if value is not None:
            check_id(value, name)
    state = await run_in_threadpool(shop_state, request, shop)
    answer = await run_in_threadpool(lambda: _service(state).trend(interval, product_id=product_id,
                                                                   category=category, topic=topic))
    return json_response(answer)


@router.get("/shops/{shop}/alerts", responses=ERRORS, tags=["reviews"])
async def get_alerts(
    request: Request, shop: str, _: Annotated[Principal, Depends(require("read"))],
    scope: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Alerts on surges of negative reviews, newest first (detection brought up to date first)."""
    if scope is not None:
        check_id(scope, "scope")
    state = await run_in_threadpool(shop_state, request, shop)

    def listing() -> dict[str, Any]:
        from shoprank.sentiment.webhook import deliver_new

        new = _service(state).refresh_alerts()
        if new:
            alert_worker(request).submit(lambda: deliver_new(state.store, new))
        return {"alerts": state.store.list_alerts(limit, scope)}

    try:
        answer = await run_in_threadpool(listing)
    except ValueError as exc:  # a bad alert setting of the shop
        raise ApiError(409, "invalid_setting", str(exc)[:300], "sentiment.alerts") from None
    return json_response(answer)


@router.get("/analytics", include_in_schema=False)
def analytics_page() -> Response:
    return FileResponse(STATIC / "analytics.html", headers={"Cache-Control": "no-cache"})
