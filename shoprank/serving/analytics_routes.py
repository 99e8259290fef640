"""Search analytics: ``GET /shops/{shop}/analytics`` (the page at ``/analytics`` plots it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from shoprank.serving.auth import Principal, require
from shoprank.serving.common import json_response, shop_state
from shoprank.serving.errors import ApiError
from shoprank.serving.schemas import ERRORS

router = APIRouter()
Reader = Annotated[Principal, Depends(require("read"))]


@router.get("/shops/{shop}/analytics", responses=ERRORS, tags=["analytics"])
def analytics(
    request: Request,
    shop: str,
    _: Reader,
    days: Annotated[float, Query(gt=0, le=3650, allow_inf_nan=False,
                                 description="the last N days (ignored when since is given)")] = 30,
    since: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="from (Unix seconds)")] = None,
    until: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="to (Unix seconds, excluded)")] = None,
    top: Annotated[int, Query(ge=1, le=200, description="entries per query list")] = 20,
) -> Response:
    """Searches, distinct queries, top queries with click-through and conversion, zero- and low-result queries,
    click-through by position, add-to-cart and purchase rates by surface, searches per day, latency percentiles."""
    from shoprank.analytics import AnalyticsConfig, shop_analytics

    if since is not None and until is not None and until <= since:
        raise ApiError(422, "invalid_parameter", "until must be later than since", "until")
    state = shop_state(request, shop)
    report = shop_analytics(state.store, days=days, since=since, until=until, config=AnalyticsConfig(top=top))
    return json_response({"shop": state.name, **report})
