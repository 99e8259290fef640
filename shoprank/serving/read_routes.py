"""Read endpoints: search, recommendations for a user, similar items, bought together, products, shops."""

from __future__ import annotations

import sqlite3
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from shoprank.results import SearchFilters
from shoprank.serving import rerank
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import check_id, clean_query, engine_of, json_response, registry_of, shop_state
from shoprank.serving.errors import ApiError
from shoprank.serving.impressions import record_answer
from shoprank.serving.rerank import OVER_FETCH
from shoprank.serving.schemas import ERRORS, ItemsAnswer, SearchAnswer, ShopsAnswer, UsersAnswer

router = APIRouter()
Reader = Annotated[Principal, Depends(require("read"))]
K = Annotated[int, Query(ge=1, le=100, description="how many items")]
Diversity = Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False,
                                          description="re-ranking λ for this request (0 = off); default: the shop's")]


def _queued(request: Request) -> float:
    return getattr(request.state, "queue", 0.0)


def _engine_call(request: Request, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the engine once a gate slot is free; the wait shows as ``queue`` in Server-Timing. A call that
    cannot start within the registry's ``engine_queue_seconds`` is refused (503 + Retry-After)."""
    registry = registry_of(request)
    waited = time.perf_counter()
    timeout = registry.engine_queue_seconds
    if not registry.engine_gate.acquire(timeout=timeout):
        raise ApiError(503, "overloaded", "the engines are busy; retry shortly", headers={"Retry-After": "1"})
    try:
        request.state.queue = _queued(request) + time.perf_counter() - waited
        return call(*args, **kwargs)
    except KeyError as exc:  # an id the model does not know
        raise ApiError(404, "not_found", str(exc.args[0] if exc.args else exc)[:300]) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)[:300]) from None
    finally:
        registry.engine_gate.release()


@router.get("/shops/{shop}/search", response_model=SearchAnswer, responses=ERRORS, tags=["search"])
def search(
    request: Request,
    shop: str,
    _: Reader,
    q: Annotated[str, Query(description="the query; cut at 1,000 characters")] = "",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 10,
    user_id: Annotated[str | None, Query(description="personalise for this user")] = None,
    category: Annotated[str | None, Query(max_length=1000, description="any level of the category path")] = None,
    brand: Annotated[str | None, Query(max_length=256)] = None,
    price_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    price_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    in_stock: Annotated[bool | None, Query()] = None,
    facets: Annotated[bool, Query(description="count facets over the top candidates")] = True,
    diversity: Diversity = None,
) -> Response:
    """Products for a query, with filters, facets, pagination and, given ``user_id``, personalisation."""
    started = time.perf_counter()
    state = shop_state(request, shop)
    engine = engine_of(state, "search")
    text, cut = clean_query(q)
    user = check_id(user_id, "user_id") if user_id else None
    filters = SearchFilters(
        category=clean_query(category)[0] or None if category else None,
        brand=clean_query(brand)[0] or None if brand else None,
        price_min=price_min, price_max=price_max, in_stock=in_stock,
    )
    offset = (page - 1) * per_page
    cap = max(request.app.state.config.facet_candidates, per_page) if facets else 0
    reranker = state.rerank.for_request(diversity, page_size=per_page)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if reranker is not None:  # re-rank the head of the list, then cut the page from it
        depth = max(cap, offset + per_page * OVER_FETCH)
        items, total = _engine_call(request, engine.search, text, k=depth, offset=0, filters=filters, user_id=user)
        fetched = len(items)
        items = rerank.apply(reranker, engine, state.store, items, query=text, filters=filters,
                             seed=rerank.request_seed(text, user))
        total = max(0, total - (fetched - len(items)))  # hidden by a rule
        facet_ids = [item.id for item in items[:cap]] if facets else []
        items = items[offset : offset + per_page]
    elif facets and offset + per_page <= cap:  # one call: the page, explained, and ids for the facets
        items, total = _engine_call(request, engine.search, text, k=cap, offset=0, filters=filters, user_id=user,
                                    explain=offset + per_page)
        facet_ids = [item.id for item in items]
        items = items[offset : offset + per_page]
    else:
        items, total = _engine_call(request, engine.search, text, k=per_page, offset=offset, filters=filters,
                                    user_id=user)
        facet_ids = []
        if facets:
            head, _total = _engine_call(request, engine.search, text, k=cap, offset=0, filters=filters, user_id=user,
                                        explain=0)
            facet_ids = [item.id for item in head]
    t1 = time.perf_counter()
    hits = state.catalog.hydrate(items)
    counts = state.catalog.facets(facet_ids) if facets else {}
    t2 = time.perf_counter()
    queue = _queued(request)
    timings.update(queue=queue, engine=t1 - t0 - queue, hydrate=t2 - t1, total=t2 - started)
    version = getattr(engine, "version", None)
    payload = {
        "hits": hits, "facets": counts, "total": int(total), "page": page, "per_page": per_page,
        "query": text, "query_truncated": cut, "model_version": version,
        "request_id": record_answer(request, state.name, "search", [h["id"] for h in hits], offset=offset,
                                    page=page, query=text, user_id=user, model_version=version),
    }
    return json_response(payload, timings=timings)


def _items_answer(request: Request, state: Any, engine: Any, items: list[Any], started: float, t0: float,
                  surface: str, user_id: str | None = None, item_id: str | None = None) -> Response:
    t1 = time.perf_counter()
    version = getattr(engine, "version", None)
    hydrated = state.catalog.hydrate(items)
    payload = {"items": hydrated, "model_version": version,
               "request_id": record_answer(request, state.name, surface, [i["id"] for i in hydrated],
                                           user_id=user_id, item_id=item_id, model_version=version)}
    queue = _queued(request)
    return json_response(payload, timings={"queue": queue, "engine": t1 - t0 - queue,
                                           "hydrate": time.perf_counter() - t1, "total": time.perf_counter() - started})


@router.get("/shops/{shop}/users/{user_id}/recommendations", response_model=ItemsAnswer, responses=ERRORS,
            tags=["recommendations"])
def recommendations(
    request: Request,
    shop: str,
    user_id: str,
    _: Reader,
    k: K = 10,
    exclude: Annotated[list[str] | None, Query(max_length=200, description="ids to leave out")] = None,
    diversity: Diversity = None,
) -> Response:
    """"Recommended for you": reads the user's events at call time, so a posted event counts at once."""
    started = time.perf_counter()
    state = shop_state(request, shop)
    engine = engine_of(state, "recommend")
    user = check_id(user_id, "user_id")
    reranker = state.rerank.for_request(diversity, page_size=k)
    t0 = time.perf_counter()
    fetch = k * OVER_FETCH if reranker is not None else k
    items = _engine_call(request, engine.recommend, user, k=fetch, exclude=set(exclude) if exclude else None,
                         slot_at=k)
    if reranker is not None:
        items = rerank.apply(reranker, engine, state.store, items, seed=rerank.request_seed(user))[:k]
    return _items_answer(request, state, engine, items, started, t0, "recommendations", user_id=user)


def _product_items(request: Request, shop: str, product_id: str, k: int, method: str) -> Response:
    started = time.perf_counter()
    state = shop_state(request, shop)
    engine = engine_of(state, "recommend")
    item = check_id(product_id, "product_id")
    if item not in state.catalog:
        raise ApiError(404, "product_not_found", f"shop '{shop}' has no product '{item[:100]}'", "product_id")
    reranker = state.rerank.for_request(page_size=k, rules_only=True)  # variety would work against "similar"
    t0 = time.perf_counter()
    items = _engine_call(request, getattr(engine, method), item, k * OVER_FETCH if reranker is not None else k)
    if reranker is not None:
        items = rerank.apply(reranker, engine, state.store, items)[:k]
    surface = "similar" if method == "similar" else "bought_together"
    return _items_answer(request, state, engine, items, started, t0, surface, item_id=item)


@router.get("/shops/{shop}/products/{product_id:path}/similar", response_model=ItemsAnswer, responses=ERRORS,
            tags=["recommendations"])
def similar(request: Request, shop: str, product_id: str, _: Reader, k: K = 10) -> Response:
    """Items like this one."""
    return _product_items(request, shop, product_id, k, "similar")


@router.get("/shops/{shop}/products/{product_id:path}/bought-together", response_model=ItemsAnswer,
            responses=ERRORS, tags=["recommendations"])
def bought_together(request: Request, shop: str, product_id: str, _: Reader, k: K = 10) -> Response:
    """Items bought (or viewed) with this one."""
    return _product_items(request, shop, product_id, k, "bought_together")


@router.get("/shops/{shop}/products/{product_id:path}", responses=ERRORS, tags=["catalogue"])
def get_product(request: Request, shop: str, product_id: str, _: Reader) -> Response:
    """One product as stored."""
    state = shop_state(request, shop)
    item = check_id(product_id, "product_id")
    product = state.store.get_product(item)
    if product is None:
        raise ApiError(404, "product_not_found", f"shop '{shop}' has no product '{item[:100]}'", "product_id")
    return json_response({"product": product.to_dict()})


_USERS_CACHE: dict[str, tuple[float, list[str]]] = {}


@router.get("/shops/{shop}/users", response_model=UsersAnswer, responses=ERRORS, tags=["catalogue"])
def recent_users(
    request: Request, shop: str, _: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Response:
    """Recently active users (for the storefront's user picker)."""
    state = shop_state(request, shop)
    key = str(state.shop.store_path)
    cached = _USERS_CACHE.get(key)
    if cached is None or time.monotonic() - cached[0] > 30:
        # newest events by primary key: cheap on any size of log
        conn = sqlite3.connect(f"file:{state.shop.store_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT user_id FROM events ORDER BY seq DESC LIMIT 5000").fetchall()
        finally:
            conn.close()
        cached = (time.monotonic(), list(dict.fromkeys(r[0] for r in rows))[:100])
        _USERS_CACHE[key] = cached
    return json_response({"users": cached[1][:limit]})


@router.get("/shops", response_model=ShopsAnswer, responses=ERRORS, tags=["catalogue"])
def shops(request: Request, principal: Annotated[Principal, Depends(require("any"))]) -> Response:
    """The shops this key may read, with the models each serves."""
    registry = registry_of(request)
    out = []
    for name in registry.shop_names():
        if not principal.can("read", name):
            continue
        try:
            state = registry.get(name)
        except Exception:
            continue
        out.append({"name": name, "products": len(state.catalog),
                    "models": {kind: slot.describe() for kind, slot in state.slots.items()}})
    return json_response({"shops": out})
