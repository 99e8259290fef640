"""Read endpoints: search, recommendations for a user, similar items, bought together, products, shops."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from shoprank.cascade import Cascade
from shoprank.cascade import Request as Ask
from shoprank.rerank.shop import request_seed
from shoprank.results import SearchFilters
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import check_id, clean_query, engine_of, json_response, registry_of, shop_state
from shoprank.serving.errors import ApiError
from shoprank.serving.experiment_serving import arm_for, record_fields, run_arm
from shoprank.serving.impressions import record_answer
from shoprank.serving.schemas import ERRORS, ItemsAnswer, SearchAnswer, ShopsAnswer, UsersAnswer, check_range
from shoprank.serving.synonym_routes import with_synonyms
from shoprank.synonyms.engine import WithSynonyms

router = APIRouter()
Reader = Annotated[Principal, Depends(require("read"))]
K = Annotated[int, Query(ge=1, le=100, description="how many items")]
Diversity = Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False,
                                          description="re-ranking λ for this request (0 = off); default: the shop's")]


def _queued(request: Request) -> float:
    return getattr(request.state, "queue", 0.0)


def _cascade(state: Any, *, search: Any = None, recommend: Any = None) -> Cascade:
    """The shop's cascade over the engine this request took (a swap mid-request does not change it)."""
    return Cascade(search=search, recommend=recommend, reranking=state.rerank, store=state.store)


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
    session_id: Annotated[str | None, Query(description="the shopper's session (experiment assignment and the "
                                                        "exploration and randomisation draws when "
                                                        "there is no user_id)")] = None,
    category: Annotated[str | None, Query(max_length=1000, description="any level of the category path")] = None,
    brand: Annotated[str | None, Query(max_length=256)] = None,
    price_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    price_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    in_stock: Annotated[bool | None, Query()] = None,
    facets: Annotated[bool, Query(description="count facets over the matching products")] = True,
    diversity: Diversity = None,
    sort: Annotated[Literal["relevance", "price_asc", "price_desc", "newest"],
                    Query(description="the order of the matching products (stable; relevance breaks ties)")
                    ] = "relevance",
) -> Response:
    """The products a query matches (``total``; facets and pages are over them), best first, with filters,
    pagination, sorting and, given ``user_id``, personalisation. Nothing matches: ``total`` 0, no hits, a
    ``did_you_mean`` when a corrected query has results, and ``closest`` when the shop's search settings ask."""
    started = time.perf_counter()
    check_range(price_min, price_max, "price_min", "price_max")
    state = shop_state(request, shop)
    engine = with_synonyms(state, engine_of(state, "search"))
    text, cut = clean_query(q)
    user = check_id(user_id, "user_id") if user_id else None
    filters = SearchFilters(
        category=clean_query(category)[0] or None if category else None,
        brand=clean_query(brand)[0] or None if brand else None,
        price_min=price_min, price_max=price_max, in_stock=in_stock,
    )
    cap = max(request.app.state.config.facet_candidates, per_page) if facets else 0
    session = check_id(session_id, "session_id") if session_id else None
    # exploration and randomisation draw alike for one shopper and query (pages agree), unlike across shoppers
    ask = Ask("search", text, user_id=user, filters=filters, page=page, per_page=per_page, diversity=diversity,
                  facets=facets, explore=True, seed=request_seed(text, user or session), sort=sort)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    arm = arm_for(state, "search", user or session)
    if arm is None:
        answer, arm_fields = _engine_call(request, _cascade(state, search=engine).run_one, ask), {}
    else:
        answer, arm_fields = run_arm(arm, state, "search", ask, engine, lambda f, a: _engine_call(request, f, a),
                                     registry_of(request).loaders)
    t1 = time.perf_counter()
    hits = state.catalog.hydrate(answer.items)
    recorded = record_fields(arm_fields, [h["id"] for h in hits])
    counts = state.catalog.facets(answer.facet_ids[:cap]) if facets else {}
    t2 = time.perf_counter()
    queue = _queued(request)
    timings.update(queue=queue, engine=t1 - t0 - queue, hydrate=t2 - t1, total=t2 - started)
    payload = {
        "hits": hits, "facets": counts, "total": answer.total, "page": page, "per_page": per_page,
        "query": text, "query_truncated": cut,
        "corrected_query": answer.corrected_query, "did_you_mean": answer.did_you_mean,
        "closest": state.catalog.hydrate(answer.closest) if answer.closest else [],
        "sort": sort, "model_version": answer.model_version,
        "request_id": record_answer(request, state.name, "search", [h["id"] for h in hits],
                                    offset=(page - 1) * per_page, page=page, query=text, user_id=user,
                                    model_version=answer.model_version, total=int(answer.total),
                                    latency_ms=(time.perf_counter() - started) * 1000,
                                    **{"request_id": answer.request_id, **recorded}),
    }
    if recorded:  # an answer inside an experiment says which
        payload.update(experiment=recorded["experiment"], variant=recorded["variant"])
    added = engine.synonyms.expand(text).added if isinstance(engine, WithSynonyms) else ()
    if added:  # what the shop's synonyms added to the query
        payload["synonyms"] = [{"term": term, "of": of} for term, of in added]
    return json_response(payload, timings=timings)


def _items_answer(request: Request, state: Any, engine: Any, answer: Any, started: float, t0: float,
                  surface: str, user_id: str | None = None, item_id: str | None = None,
                  arm_fields: dict[str, Any] | None = None) -> Response:
    t1 = time.perf_counter()
    version = answer.model_version if arm_fields else getattr(engine, "version", None)
    hydrated = state.catalog.hydrate(answer.items)
    recorded = record_fields(arm_fields or {}, [i["id"] for i in hydrated])
    payload = {"items": hydrated, "model_version": version,
               "request_id": record_answer(request, state.name, surface, [i["id"] for i in hydrated],
                                           user_id=user_id, item_id=item_id, model_version=version,
                                           latency_ms=(time.perf_counter() - started) * 1000,
                                           **{"request_id": answer.request_id, **recorded})}
    if recorded:
        payload.update(experiment=recorded["experiment"], variant=recorded["variant"])
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
    ask = Ask("recommend", user_id=user, per_page=k, exclude=frozenset(exclude or ()), diversity=diversity,
                  explore=True, seed=request_seed(user))
    t0 = time.perf_counter()
    arm = arm_for(state, "recommend", user)
    if arm is None:
        answer, arm_fields = _engine_call(request, _cascade(state, recommend=engine).run_one, ask), {}
    else:
        answer, arm_fields = run_arm(arm, state, "recommend", ask, engine, lambda f, a: _engine_call(request, f, a),
                                     registry_of(request).loaders)
    return _items_answer(request, state, engine, answer, started, t0, "recommendations", user_id=user,
                         arm_fields=arm_fields)


def _product_items(request: Request, shop: str, product_id: str, k: int, method: str) -> Response:
    started = time.perf_counter()
    state = shop_state(request, shop)
    engine = engine_of(state, "recommend")
    item = check_id(product_id, "product_id")
    if item not in state.catalog:
        raise ApiError(404, "product_not_found", f"shop '{shop}' has no product '{item[:100]}'", "product_id")
    ask = Ask("similar" if method == "similar" else "bought_together", item_id=item, per_page=k)
    t0 = time.perf_counter()
    answer = _engine_call(request, _cascade(state, recommend=engine).run_one, ask)
    return _items_answer(request, state, engine, answer, started, t0, ask.surface, item_id=item)


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


def _users_key(state: Any) -> str:
    return f"{id(state.store)}:{state.name}"


def forget_user(state: Any, user_id: str) -> None:
    """Drop a deleted user from the recent-users list at once."""
    key = _users_key(state)
    cached = _USERS_CACHE.get(key)
    if cached is not None:
        _USERS_CACHE[key] = (cached[0], [u for u in cached[1] if u != user_id])


@router.get("/shops/{shop}/users", response_model=UsersAnswer, responses=ERRORS, tags=["catalogue"])
def recent_users(
    request: Request, shop: str, _: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Response:
    """Recently active users (for the storefront's user picker)."""
    state = shop_state(request, shop)
    key = _users_key(state)
    cached = _USERS_CACHE.get(key)
    if cached is None or time.monotonic() - cached[0] > 30:
        cached = (time.monotonic(), state.store.recent_users(100))
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
