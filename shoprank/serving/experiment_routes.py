"""Online experiments: ``PUT /shops/{shop}/experiments/{name}`` starts one, ``GET`` reads its report,
``GET /shops/{shop}/experiments`` lists them, ``POST .../stop`` stops one (the report stays readable)."""

from __future__ import annotations

import json
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

EXPERIMENT_SCHEMA = {
    "type": "object", "required": ["surface", "variants"],
    "properties": {"kind": {"enum": ["ab", "interleave"]}, "surface": {"enum": ["search", "recommend"]},
                   "variants": {"type": "object", "description": "NAME -> {search_model, recommend_model, "
                                "diversity, rules}"},
                   "traffic": {"type": "object", "description": "NAME -> share; the shares sum to 1"},
                   "alpha": {"type": "number"}},
}


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    repeated: list[str]


def _object(items: list[tuple[str, Any]]) -> _Object:
    out = _Object(items)
    keys = [k for k, _ in items]
    out.repeated = [k for n, k in enumerate(keys) if k in keys[:n]]
    return out


def _repeated_variant(raw: bytes) -> str | None:
    """The first variant named twice in the body (a JSON object keeps only the last copy of a key)."""
    try:
        body = json.loads(raw, object_pairs_hook=_object)
    except ValueError:
        return None
    variants = body.get("variants") if isinstance(body, dict) else None
    return variants.repeated[0] if isinstance(variants, _Object) and variants.repeated else None


def _versions(state: ShopState) -> Any:
    from shoprank.bundles import list_versions

    return lambda kind: list_versions(state.shop.models_path, kind)


def _report(state: ShopState, name: str) -> dict[str, Any]:
    from shoprank.abtest import experiment_report, load_experiments

    experiment = load_experiments(state.store).get(name)
    if experiment is None:
        raise ApiError(404, "experiment_not_found", f"shop '{state.name}' has no experiment '{name[:80]}'", "name")
    return experiment_report(state.store, experiment)


@router.put("/shops/{shop}/experiments/{name}", responses=ERRORS, tags=["experiments"],
            openapi_extra={"requestBody": {"required": True,
                                           "content": {"application/json": {"schema": EXPERIMENT_SCHEMA}}}})
async def put_experiment(request: Request, shop: str, name: str, _: Writer) -> Response:
    """Start an A/B or interleaving experiment (one running per surface); the same definition again is a no-op."""
    from shoprank.abtest import ExperimentConflict, ExperimentError, parse_experiment, start_experiment
    from shoprank.serving.experiment_serving import forget

    data = await read_json(request)
    repeated = _repeated_variant(await request.body())
    if repeated is not None:
        raise ApiError(422, "invalid_experiment", f"variant '{repeated[:60]}' is named twice", "variants")
    state = await run_in_threadpool(shop_state, request, shop)

    def start() -> tuple[dict[str, Any], bool]:
        try:
            experiment = parse_experiment(name, data, versions=_versions(state))
            started, new = start_experiment(state.store, experiment)
        except ExperimentError as exc:
            raise ApiError(422, "invalid_experiment", exc.message[:500], exc.field) from None
        except ExperimentConflict as exc:
            raise ApiError(409, "experiment_conflict", str(exc)[:500], "name") from None
        except OSError as exc:
            raise storage_error(exc) from None
        forget(state)
        return _report(state, started.name), new

    report, new = await run_in_threadpool(start)
    return json_response(report, status=201 if new else 200)


@router.get("/shops/{shop}/experiments", responses=ERRORS, tags=["experiments"])
def list_experiments(request: Request, shop: str, _: Reader) -> Response:
    """Every experiment of the shop, running and stopped, with its winner so far."""
    from shoprank.abtest import experiment_report, load_experiments

    state = shop_state(request, shop)
    out = []
    for experiment in load_experiments(state.store).values():
        report = experiment_report(state.store, experiment)
        out.append({k: report[k] for k in ("name", "kind", "surface", "state", "created_at", "stopped_at", "winner")})
    return json_response({"experiments": out})


@router.get("/shops/{shop}/experiments/{name}", responses=ERRORS, tags=["experiments"])
def get_experiment(request: Request, shop: str, name: str, _: Reader) -> Response:
    """The experiment's report: per variant figures, the comparison, ``winner`` (sequential test) and the
    sample still needed."""
    return json_response(_report(shop_state(request, shop), name))


@router.post("/shops/{shop}/experiments/{name}/stop", responses=ERRORS, tags=["experiments"])
def stop(request: Request, shop: str, name: str, _: Writer) -> Response:
    """Stop the experiment: answers go back to what the shop serves; the report stays readable."""
    from shoprank.abtest import stop_experiment
    from shoprank.serving.experiment_serving import forget

    state = shop_state(request, shop)
    try:
        stop_experiment(state.store, name)
    except KeyError:
        raise ApiError(404, "experiment_not_found", f"shop '{state.name}' has no experiment '{name[:80]}'",
                       "name") from None
    except OSError as exc:
        raise storage_error(exc) from None
    forget(state)
    return json_response(_report(state, name))
