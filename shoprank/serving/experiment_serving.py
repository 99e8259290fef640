"""Answers inside a running experiment: the shopper's variant (A/B) or both variants interleaved.

The read routes ask :func:`arm_for` which experiment a request falls in; :func:`run_arm` then answers it with
the variant's engine (a model version other than the one served is loaded once and kept), re-ranking
(diversity λ, business rules on or off), or, for interleaving, the team-draft merge of both variants' lists.
A variant engine is loaded once from its bundle and kept on the shop's state, where catalogue writes reach it as
they reach the served engine.
"""

from __future__ import annotations

import inspect
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from shoprank.abtest.assign import assign
from shoprank.abtest.book import load_experiments
from shoprank.abtest.config import Experiment, Variant
from shoprank.abtest.interleave import team_draft
from shoprank.bundles import open_bundle
from shoprank.cascade import Cascade
from shoprank.cascade import Request as Ask
from shoprank.cascade.base import Page
from shoprank.retention import baseline_versions
from shoprank.serving.errors import ApiError
from shoprank.serving.impressions import new_request_id
from shoprank.serving.registry import ShopState, catch_up

CACHE_SECONDS = 2.0
"""How long a process trusts its copy of a shop's experiments (another replica's change shows after this)."""
_cache: dict[int, tuple[float, Any, dict[str, Experiment]]] = {}
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class Arm:
    """Where one request falls: ``variant`` (A/B) or None (interleaving: both); ``unit`` it was assigned by."""

    experiment: Experiment
    variant: str | None
    unit: str
    unit_is_request: bool


def experiments_of(state: ShopState) -> dict[str, Experiment]:
    key = id(state.store)
    hit = _cache.get(key)
    if hit is None or hit[1] is not state.store or time.monotonic() - hit[0] > CACHE_SECONDS:
        hit = (time.monotonic(), state.store, load_experiments(state.store))
        _cache[key] = hit
    return hit[2]


def forget(state: ShopState) -> None:
    """Re-read the shop's experiments on the next request (after a change made here)."""
    _cache.pop(id(state.store), None)


def arm_for(state: ShopState, surface: str, unit: str | None) -> Arm | None:
    """The running experiment of ``surface`` and this request's part in it (``unit``: the user id, else the
    session id; None: a fresh request id, so each such answer is assigned on its own)."""
    running = next((e for e in experiments_of(state).values() if e.running and e.surface == surface), None)
    if running is None:
        return None
    unit_is_request = unit is None
    unit = unit or new_request_id()
    variant = assign(running.salt, unit, running.names, running.traffic) if running.kind == "ab" else None
    return Arm(running, variant, unit, unit_is_request)


class _WithoutRules:
    """A shop's re-ranking with its business rules left out (stock hiding stays)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def for_request(self, *args: Any, **kwargs: Any) -> Any:
        from shoprank.rerank.pipeline import Reranker
        from shoprank.rerank.rules import RuleSet

        reranker = self.base.for_request(*args, **kwargs)
        if reranker is None:
            return None
        return Reranker(reranker.config, RuleSet(hide_out_of_stock=reranker.rules.hide_out_of_stock),
                        reranker.exposure)


def _load_version(loaders: Mapping[str, Any], state: ShopState, kind: str, version: str) -> Any:
    """``version`` of ``kind`` through the server's own loader (``loader(shop, version)``)."""
    open_bundle(state.shop.models_path, kind, version)  # a missing or broken bundle fails here, clearly
    loader = loaders[kind]
    try:
        takes_version = len(inspect.signature(loader).parameters) >= 2
    except (TypeError, ValueError):
        takes_version = False
    if not takes_version:
        raise ValueError(f"this server's {kind} loader loads the latest bundle only")
    return loader(state.shop, version)


def variant_engine(state: ShopState, kind: str, choice: str, served: Any, loaders: Mapping[str, Any]) -> Any:
    """The engine a variant asks for: the served one for ``latest`` (or its own version), else that version."""
    if choice == "latest":
        return served
    version = choice
    if choice == "baseline":
        baselines = baseline_versions(state.shop, kind)
        if not baselines:
            raise ApiError(409, f"no_baseline_{kind}_model", f"shop '{state.name}' has no baseline {kind} bundle")
        version = baselines[-1]
    if version == getattr(served, "version", None):
        return served
    with _engine_lock:
        engine = state.variants.get((kind, version))
        if engine is None:
            before = state.store.catalog_version()
            try:
                engine = _load_version(loaders, state, kind, version)
            except Exception as exc:  # deleted or broken since the experiment started
                raise ApiError(503, "model_unavailable", f"the experiment's {kind} model {version} cannot be "
                               f"loaded: {exc}"[:300], headers={"Retry-After": "30"}) from None
            with state.write_lock:  # writes acknowledged while it loaded, then every later one (apply_to_engines)
                catch_up(state, kind, engine, before)
                state.variants[(kind, version)] = engine
    return engine


def _variant_cascade(state: ShopState, kind: str, variant: Variant, served: Any,
                     loaders: Mapping[str, Any]) -> Cascade:
    from shoprank.synonyms.engine import WithSynonyms

    wrapped = isinstance(served, WithSynonyms)
    inner = served.engine if wrapped else served
    engine = variant_engine(state, kind, variant.model(kind), inner, loaders)
    if wrapped:  # the shop's synonyms hold for every variant
        engine = served if engine is inner else served.rewrap(engine)
    rerank = state.rerank if variant.rules else _WithoutRules(state.rerank)
    if kind == "search":
        return Cascade(search=engine, reranking=rerank, store=state.store)
    return Cascade(recommend=engine, reranking=rerank, store=state.store)


def _variant_ask(ask: Ask, variant: Variant) -> Ask:
    return ask if variant.diversity is None else replace(ask, diversity=variant.diversity)


def run_arm(arm: Arm, state: ShopState, kind: str, ask: Ask, served: Any, call: Callable[..., Any],
            loaders: Mapping[str, Any]) -> tuple[Page, dict[str, Any]]:
    """The answer of ``ask`` in ``arm`` and what to record with it: experiment, variant, teams, request id.
    ``call(fn, ask)`` runs an engine call (the route's gate); ``loaders``: the server's (for other versions)."""
    experiment = arm.experiment
    fields: dict[str, Any] = {"experiment": experiment.name, "variant": arm.variant}
    if arm.unit_is_request:
        fields["request_id"] = arm.unit
    if arm.variant is not None:
        variant = experiment.variant(arm.variant)
        page = call(_variant_cascade(state, kind, variant, served, loaders).run_one, _variant_ask(ask, variant))
        return page, fields
    a, b = experiment.variants
    full = replace(ask, page=1, limit=ask.end)
    first = call(_variant_cascade(state, kind, a, served, loaders).run_one, _variant_ask(full, a))
    second = call(_variant_cascade(state, kind, b, served, loaders).run_one,
                  replace(_variant_ask(full, b), facets=False))
    seed = zlib.crc32(f"{experiment.salt}\x1f{arm.unit}\x1f{ask.query}".encode())
    ids, teams = team_draft(first.ids, second.ids, ask.end, seed, (a.name, b.name))
    scored = {item.id: item for item in second.items} | {item.id: item for item in first.items}
    items = [scored[i] for i in ids[ask.offset : ask.end]]
    fields.update(variant="interleaved", team_of=dict(zip(ids, teams, strict=True)))
    versions = f"{first.model_version}|{second.model_version}"
    merged = Page(ask, items, max(first.total, second.total), versions, first.query, first.query_truncated,
                  first.facet_ids, first.corrected_query, first.did_you_mean, first.closest)
    return merged, fields


def record_fields(fields: dict[str, Any], shown: list[str]) -> dict[str, Any]:
    """``record_answer`` keywords for the hits actually shown (hydration may drop a deleted product)."""
    if not fields:
        return {}
    out = {"experiment": fields["experiment"], "variant": fields["variant"]}
    if "team_of" in fields:
        out["teams"] = [fields["team_of"][i] for i in shown]
    if "request_id" in fields:
        out["request_id"] = fields["request_id"]
    return out
