"""Customer-service answers over HTTP: the FAQ (``PUT``/``GET /shops/{shop}/faq``), past conversations
(``POST /shops/{shop}/conversations``) and ``GET /shops/{shop}/answer?q=...``.

The shop's answers model is loaded on its first question and reloaded when a newer bundle is published; a
bundle that fails to load is refused and the last good one keeps answering."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shoprank.answers.engine import KIND, VALUES_SETTING, AnswerEngine
from shoprank.answers.records import parse_conversation, parse_faq_entry
from shoprank.bundles import latest_version
from shoprank.data.records import RecordError
from shoprank.serving.auth import Principal, require
from shoprank.serving.common import (
    batch_of,
    clean_query,
    json_response,
    read_json,
    registry_of,
    shop_state,
    storage_error,
)
from shoprank.serving.errors import ApiError
from shoprank.serving.registry import ShopState
from shoprank.serving.schemas import ERRORS, Item

log = logging.getLogger("shoprank.serving")
router = APIRouter()
MAX_REPORTED = 100


class AnswerText(BaseModel):
    faq_id: str
    text: str = Field(description="the entry's answer, its placeholders filled from the shop's values")
    confidence: float = Field(description="calibrated probability that this entry answers the question")
    placeholders: list[str] = Field(description="placeholders left unfilled, e.g. order_id")


class Alternative(BaseModel):
    faq_id: str
    confidence: float


class AnswerAnswer(BaseModel):
    answer: AnswerText | None = Field(description="null when the question is handed to a person")
    handoff: bool
    alternatives: list[Alternative]
    products: list[Item] = Field(description="the search engine's products, for product questions and hand-overs")
    query: str
    model_version: str | None


class FaqEntryBody(BaseModel):
    id: str
    answer: str = Field(description="the answer; may hold placeholders such as {opening_hours}")
    questions: list[str] = Field(description="example questions it answers (3 or more train best)")
    search: bool = Field(False, description="questions about products: the answer also lists matching products")


class FaqBody(BaseModel):
    entries: list[FaqEntryBody]
    replace: bool = Field(True, description="true: these entries become the FAQ; false: merged in by id")
    values: dict[str, str] | None = Field(None, description="placeholder values, e.g. {\"opening_hours\": \"9-5\"}")


class ConversationsBody(BaseModel):
    conversations: list[dict[str, Any]] = Field(description="{question, faq_id} pairs; faq_id null: no entry fitted")


@dataclass
class _Loaded:
    engine: AnswerEngine | None
    version: str | None
    error: str | None = None


class AnswerEngines:
    """Each shop's answers engine, loaded on demand and swapped when a newer bundle appears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, _Loaded] = {}

    def get(self, state: ShopState) -> AnswerEngine:
        latest = latest_version(state.shop.models_path, KIND)
        current = self._loaded.get(state.name)
        if current is None or (latest is not None and latest != current.version):
            with self._lock:
                current = self._loaded.get(state.name)
                if current is None or (latest is not None and latest != current.version):
                    current = self._load(state, latest, current)
                    self._loaded[state.name] = current
        if current.engine is None:
            raise ApiError(409, "no_answers_model", current.error or f"shop '{state.name}' has no answers model; "
                           f"run 'shoprank train answers --shop {state.name}'")
        return current.engine

    @staticmethod
    def _load(state: ShopState, latest: str | None, previous: _Loaded | None) -> _Loaded:
        if latest is None:
            return _Loaded(None, None, f"shop '{state.name}' has no answers model; run 'shoprank train answers "
                           f"--shop {state.name}'")
        try:
            engine = AnswerEngine.load(state.shop, latest)
        except Exception as exc:  # a bad bundle is refused; the last good engine keeps answering
            log.error("shop %s: answers bundle %s refused: %s", state.name, latest, exc)
            if previous is not None and previous.engine is not None:
                return _Loaded(previous.engine, latest, None)
            return _Loaded(None, latest, f"shop '{state.name}': the answers model failed to load: {exc}")
        return _Loaded(engine, latest)


def engines_of(request: Request) -> AnswerEngines:
    engines = getattr(request.app.state, "answer_engines", None)
    if engines is None:
        with _CREATE:
            engines = getattr(request.app.state, "answer_engines", None)
            if engines is None:
                engines = request.app.state.answer_engines = AnswerEngines()
    return engines


_CREATE = threading.Lock()


def _gate(request: Request) -> Any:
    registry = registry_of(request)
    if not registry.engine_gate.acquire(timeout=registry.engine_queue_seconds):
        raise ApiError(503, "overloaded", "the engines are busy; retry shortly", headers={"Retry-After": "1"})
    return registry.engine_gate


def _products(request: Request, state: ShopState, text: str, k: int) -> list[dict[str, Any]]:
    """The search engine's top products for the question, when the shop serves search (else none)."""
    slot = state.slots.get("search")
    engine = slot.engine if slot is not None else None
    if engine is None or not text or k == 0:
        return []
    gate = _gate(request)
    try:
        items, _total = engine.search(text, k=k)
    except Exception:  # the answer stands without products
        log.exception("shop %s: product search for an answer failed", state.name)
        return []
    finally:
        gate.release()
    return state.catalog.hydrate(items)


@router.get("/shops/{shop}/answer", response_model=AnswerAnswer, responses=ERRORS, tags=["answers"])
def answer(
    request: Request,
    shop: str,
    _: Annotated[Principal, Depends(require("read"))],
    q: Annotated[str, Query(description="the shopper's question; cut at 1,000 characters")] = "",
    k: Annotated[int, Query(ge=0, le=10, description="alternatives listed")] = 3,
    products: Annotated[int, Query(ge=0, le=20, description="products listed for product questions")] = 4,
) -> Response:
    """The FAQ answer for a question, or a hand-over to a person when no entry is confident enough."""
    started = time.perf_counter()
    state = shop_state(request, shop)
    text, _cut = clean_query(q)
    if not text:
        raise ApiError(422, "invalid_parameter", "q must not be empty: send the shopper's question", "q")
    engine = engines_of(request).get(state)
    current = {e.id: e for e in state.store.faq_entries()}
    values = state.store.get_setting(VALUES_SETTING, {}) or {}
    gate = _gate(request)
    try:
        result = engine.answer([text], k=k, current=current, values=values)[0]
    finally:
        gate.release()
    t1 = time.perf_counter()
    found = _products(request, state, text, products) if (result.search or result.handoff) else []
    payload = {**result.payload(), "products": found, "query": text, "model_version": engine.version}
    return json_response(payload, timings={"answer": t1 - started, "total": time.perf_counter() - started})


def _refuse(problems: list[dict[str, Any]], name: str, total: int) -> ApiError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ApiError(422, "invalid_record", f"{first['field']}: {first['message']}{more}; nothing of the {total} "
                    f"{name} was stored", first["field"], details=problems[:MAX_REPORTED])


def _parse_rows(rows: list[Any], name: str, parse: Callable[[dict[str, Any]], Any],
                check: Callable[[Any, int], tuple[str, str] | None] | None = None) -> tuple[list[Any], list[Any]]:
    """The rows of a body's ``name`` list through ``parse``: (records, problems), each problem naming
    ``name[i].field``. ``check(record, i)``: the (field, message) refusing a parsed record, or None."""
    records, problems = [], []
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            problems.append({"index": i, "field": f"{name}[{i}]", "message": "must be a JSON object"})
            continue
        try:
            record = parse(raw)
        except RecordError as exc:
            problems.append({"index": i, "field": f"{name}[{i}].{exc.field}", "message": exc.message})
            continue
        refused = check(record, i) if check is not None else None
        if refused is not None:
            problems.append({"index": i, "field": f"{name}[{i}].{refused[0]}", "message": refused[1]})
            continue
        records.append(record)
    return records, problems


def _put_faq(state: ShopState, rows: list[Any], replace: bool, values: Any) -> dict[str, Any]:
    seen: dict[str, int] = {}

    def once(entry: Any, i: int) -> tuple[str, str] | None:
        if entry.id in seen:
            return "id", f"duplicate id {entry.id[:100]!r} (first at entries[{seen[entry.id]}])"
        seen[entry.id] = i
        return None

    entries, problems = _parse_rows(rows, "entries", parse_faq_entry, once)
    if values is not None and (not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool) and len(str(v)) < 2000
            for k, v in values.items())):
        problems.append({"index": None, "field": "values", "message": "must be an object of placeholder: text"})
    if problems:
        raise _refuse(problems, "FAQ entries", len(rows))
    with state.write_lock:
        try:
            result = state.store.put_faq(entries, replace=replace)
            if values is not None:
                state.store.set_setting(VALUES_SETTING, {k: str(v) for k, v in values.items()})
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(exc) from None
    return {"stored": result.stored, "updated": result.updated, "removed": result.removed,
            "entries": len(state.store.faq_entries())}


def _body_doc(model: type) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.put("/shops/{shop}/faq", responses=ERRORS, tags=["answers"], openapi_extra=_body_doc(FaqBody))
async def put_faq(request: Request, shop: str, _: Annotated[Principal, Depends(require("write"))]) -> Response:
    """Store the FAQ (validated whole first; one bad entry refuses the batch). Retrain to use it for matching;
    edited answer texts are served at once."""
    data = await read_json(request)
    rows = batch_of(data, "entries", request.app.state.config.max_batch)
    replace = data.get("replace", True)
    if not isinstance(replace, bool):
        raise ApiError(422, "invalid_parameter", "replace must be true or false", "replace")
    state = await run_in_threadpool(shop_state, request, shop)
    return json_response(await run_in_threadpool(_put_faq, state, rows, replace, data.get("values")))


@router.get("/shops/{shop}/faq", responses=ERRORS, tags=["answers"])
def get_faq(request: Request, shop: str, _: Annotated[Principal, Depends(require("read"))]) -> Response:
    """The FAQ as stored."""
    state = shop_state(request, shop)
    return json_response({"entries": [e.to_dict() for e in state.store.faq_entries()],
                          "values": state.store.get_setting(VALUES_SETTING, {}) or {}})


def _store_conversations(state: ShopState, rows: list[Any]) -> dict[str, int]:
    known = {e.id for e in state.store.faq_entries()}

    def answered_by_a_known_entry(record: Any, _: int) -> tuple[str, str] | None:
        if record.faq_id is not None and record.faq_id not in known:
            return "faq_id", f"unknown FAQ entry {record.faq_id[:100]!r}; put the FAQ first"
        return None

    records, problems = _parse_rows(rows, "conversations", parse_conversation, answered_by_a_known_entry)
    if problems:
        raise _refuse(problems, "conversations", len(rows))
    try:
        result = state.store.append_conversations(records)
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc) from None
    return {"stored": result.stored, "duplicates": result.duplicates}


@router.post("/shops/{shop}/conversations", responses=ERRORS, tags=["answers"],
             openapi_extra=_body_doc(ConversationsBody))
async def post_conversations(request: Request, shop: str, _: Annotated[Principal, Depends(require("write"))]
                             ) -> Response:
    """Past support questions and the entry that answered each (training data for the next model)."""
    data = await read_json(request)
    rows = batch_of(data, "conversations", request.app.state.config.max_batch)
    state = await run_in_threadpool(shop_state, request, shop)
    return json_response(await run_in_threadpool(_store_conversations, state, rows))
