"""Operations: health, metrics, bundle reload, status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank import __version__
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, registry_of, shop_state
from shoprank.serving.registry import KINDS
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Admin = Annotated[Principal, Depends(require("admin"))]


@router.get("/health", tags=["operations"])
def health(request: Request) -> Response:
    """200 once every shop's models are loaded, 503 (with Retry-After) before. Needs no key."""
    ready = registry_of(request).ready.is_set()
    payload = {"status": "ready" if ready else "loading", "version": __version__,
               "open_access": request.app.state.open_access}
    response = json_response(payload, status=200 if ready else 503)
    if not ready:
        response.headers["Retry-After"] = "1"
    return response


@router.get("/metrics", tags=["operations"], responses=ERRORS)
def metrics(request: Request, _: Admin) -> Response:
    """Prometheus text format: requests, latency histograms per endpoint, model versions. Admin key."""
    text = request.app.state.metrics.render(registry_of(request).models())
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/admin/reload", tags=["operations"], responses=ERRORS)
async def reload(
    request: Request,
    _: Admin,
    shop: Annotated[str | None, Query(description="one shop (default: every shop)")] = None,
    kind: Annotated[str | None, Query(pattern="^(search|recommend)$")] = None,
) -> Response:
    """Load the latest published bundles and swap them in atomically; a bad bundle is refused and the
    last good one keeps serving (its status is ``failed`` in the answer)."""
    registry = registry_of(request)
    kinds = (kind,) if kind else KINDS
    names = [shop] if shop else registry.shop_names()
    report = {}
    for name in names:
        await run_in_threadpool(shop_state, request, name)
        report[name] = await run_in_threadpool(registry.reload, name, kinds)
    ok = all(entry.get("status") != "failed" for shop_report in report.values() for entry in shop_report.values())
    return json_response({"ok": ok, "shops": report})


@router.get("/admin/status", tags=["operations"], responses=ERRORS)
def status(request: Request, _: Admin) -> Response:
    """Every open shop with its product count and the state of its models."""
    registry = registry_of(request)
    shops = {
        state.name: {"products": len(state.catalog), "catalog_version": state.catalog.version,
                     "models": {k: s.describe() for k, s in state.slots.items()},
                     "baseline": registry.baseline.status(state.shop) if registry.baseline is not None else None}
        for state in registry.loaded()
    }
    impressions = getattr(request.app.state, "impressions", None)
    return json_response({"ready": registry.ready.is_set(), "shops": shops,
                          "in_flight": request.app.state.metrics.in_flight,
                          "impressions": impressions.describe() if impressions is not None else None})
