"""Keep learning: retrain when enough new traffic arrived, publish only a candidate that is not worse.

``retrain_once(shop)`` for each kind (recommend, search): if at least ``min_new_events`` events arrived since
the serving bundle was trained, it trains a candidate on everything before the recent held-out window
(:mod:`shoprank.retrain.holdout`), scores candidate and serving model on that window, and publishes the
candidate only when its score is at least the serving one minus ``tolerance``. The verdict with both figures
goes into the published bundle's manifest (``params["retrain"]``), into the log (``shoprank.retrain``) and,
for every decision including refusals, into ``SHOP/runs/retrain.jsonl``. A refused candidate publishes nothing,
so the serving model keeps serving.

``shoprank serve --retrain-every 1h`` runs it for every shop in a background process each period;
``shoprank train watch --shop S --every 1h`` does the same in a process of its own.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from shoprank.bundles import BundleError, open_bundle
from shoprank.shops import Shop

log = logging.getLogger("shoprank.retrain")

KINDS = ("recommend", "search")


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``2d`` (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise ValueError(f"a duration is a number with s, m, h or d (e.g. 30m, 1h), got {text!r}")
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


@dataclass(frozen=True)
class RetrainConfig:
    min_new_events: int = 1000
    """Retrain a kind only once this many events arrived since its serving bundle was trained."""
    holdout_share: float = 0.1
    """The most recent share of events held out: the candidate never sees it; both models are scored on it."""
    tolerance: float = 0.0
    """A candidate is published when candidate >= serving - tolerance (NDCG@10 on the held-out traffic)."""
    min_holdout: int = 20
    """Fewer held-out users / queries than this: no verdict can be trusted, nothing is published."""
    profile: str = "quick"
    threads: int = 2
    encoder: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    """Training settings passed to the recommender's profile (tests: tiny models)."""

    def __post_init__(self) -> None:
        if self.min_new_events < 0 or self.min_holdout < 1:
            raise ValueError("RetrainConfig.min_new_events must be >= 0 and min_holdout >= 1")
        if not 0 < self.holdout_share < 1:
            raise ValueError(f"RetrainConfig.holdout_share must lie in (0, 1), got {self.holdout_share}")
        if self.tolerance < 0:
            raise ValueError("RetrainConfig.tolerance must be 0 or more")


@dataclass
class Verdict:
    kind: str
    decision: str  # published | refused | skipped
    reason: str
    metric: str = "ndcg@10 on the most recent held-out traffic"
    candidate: float | None = None
    serving: float | None = None
    serving_version: str | None = None
    version: str | None = None
    held_out: int = 0
    cutoff: float | None = None
    new_events: int = 0
    events_at_training: int = 0
    seconds: float = 0.0
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _serving_params(shop: Shop, kind: str) -> tuple[str | None, dict[str, Any]]:
    try:
        bundle = open_bundle(shop.models_path, kind, verify=False)
    except BundleError:
        return None, {}
    return bundle.version, bundle.params


def _trained_at_events(params: dict[str, Any]) -> int:
    if "retrain" in params:
        return int(params["retrain"].get("events_at_training", 0))
    return int(params.get("log", {}).get("events", 0)) if "log" in params else 0


# recommendations -----------------------------------------------------------------------------------------
def train_recommend_candidate(shop: Shop, cutoff: float, config: RetrainConfig) -> Any:
    """The recommend artifacts trained on the events before ``cutoff`` (not published)."""
    from shoprank.recommend.defences import DEFAULT as DEFENCES
    from shoprank.recommend.pipeline import fit, item_vectors, log_of, read_log
    from shoprank.recommend.training import profile_config

    full = read_log(shop)
    train_log = log_of(full.catalogue, [e for e in full.events if e.timestamp < cutoff], DEFENCES)
    vectors = item_vectors(shop, train_log, config.encoder, progress=False)
    config_ = profile_config(config.profile, len(full.catalogue), vectors.shape[1], threads=config.threads,
                             **config.overrides)
    art, _ = fit(train_log, train_log.split(), vectors, config_, progress=False,
                 params={"profile": config.profile, "encoder": config.encoder})
    return art


def _since_serving(shop: Shop, kind: str, store: Any, config: RetrainConfig) -> Verdict:
    """The verdict as far as the events since the serving bundle go: with a reason when too few arrived."""
    serving_version, params = _serving_params(shop, kind)
    now_events = store.event_count()
    new = now_events - _trained_at_events(params)
    verdict = Verdict(kind, "skipped", "", serving_version=serving_version, new_events=new,
                      events_at_training=now_events)
    if new < config.min_new_events:
        verdict.reason = f"{new} new events since the serving model; waiting for {config.min_new_events}"
    return verdict


def _enough_held_out(verdict: Verdict, cutoff: float, held_out: int, unit: str, config: RetrainConfig) -> bool:
    """Record the held-out traffic in ``verdict``; False (with the reason) when it is too thin to trust."""
    verdict.cutoff, verdict.held_out = cutoff, held_out
    if held_out < config.min_holdout:
        verdict.reason = f"only {held_out} {unit} (need {config.min_holdout}); nothing published"
        return False
    return True


RecTrainer = Callable[[Shop, float, RetrainConfig], Any]
SearchTrainer = Callable[[Shop, float, RetrainConfig], tuple[Any, dict[str, Any]]]


def retrain_recommend(shop: Shop, config: RetrainConfig, trainer: RecTrainer | None = None) -> Verdict:
    from shoprank.recommend import artifacts
    from shoprank.recommend.service import Recommender
    from shoprank.retrain.holdout import recent_cutoff, recommend_holdout, score_recommender

    started = time.perf_counter()
    with shop.store(create=False) as store:
        verdict = _since_serving(shop, "recommend", store, config)
        if verdict.reason:
            return verdict
        events = list(store.iter_events())
        known = {p.id for p in store.iter_products()}
    cutoff = recent_cutoff([e.timestamp for e in events], config.holdout_share)
    holdout = recommend_holdout(events, cutoff, known)
    if not _enough_held_out(verdict, cutoff, len(holdout), "held-out users", config):
        return verdict
    art = (trainer or train_recommend_candidate)(shop, cutoff, config)
    with shop.store(create=False) as store:
        verdict.candidate = score_recommender(Recommender(art, store), holdout)
        if verdict.serving_version is not None:
            verdict.serving = score_recommender(Recommender.load(shop, verdict.serving_version), holdout)
    if not _decide(verdict, config):
        return _finish(verdict, started)
    art.params["retrain"] = verdict.to_dict()
    verdict.version = artifacts.save(shop.models_path, art)
    return _finish(verdict, started)


# search ------------------------------------------------------------------------------------------------
def train_search_candidate(shop: Shop, cutoff: float, config: RetrainConfig) -> tuple[Any, dict[str, Any]]:
    """A search stack trained by ``train search``'s trainer (not published) and its bundle params.

    It learns from the shop's judgments (which carry no time) and from the behaviour log before ``cutoff``
    only, so the held-out traffic it is compared on is not in its training data."""
    from shoprank.search.publish import SearchTraining, train_stack

    _, serving = _serving_params(shop, "search")  # keep the shop's choice of document tower
    layers = serving.get("distil_layers")
    training = SearchTraining(profile=config.profile, threads=config.threads,
                              doc_tower=serving.get("doc_tower", "base"),
                              distil_layers=tuple(layers) if layers else None,
                              tower_distill=serving.get("tower_distill"))
    trained = train_stack(shop, training, until=cutoff, progress=False)
    return trained.stack, trained.params


def retrain_search(shop: Shop, config: RetrainConfig, trainer: SearchTrainer | None = None) -> Verdict:
    from shoprank.retrain.holdout import recent_cutoff, score_search, search_holdout
    from shoprank.search.engine import SearchEngine
    from shoprank.search.publish import publish_stack

    started = time.perf_counter()
    with shop.store(create=False) as store:
        verdict = _since_serving(shop, "search", store, config)
        if verdict.reason:
            return verdict
        cutoff = recent_cutoff([i.timestamp for i in store.iter_impressions(surfaces=["search"])],
                               config.holdout_share)
        holdout = search_holdout(store, cutoff)
    if not _enough_held_out(verdict, cutoff, len(holdout), "held-out queries with clicks", config):
        return verdict
    try:
        stack, bundle_params = (trainer or train_search_candidate)(shop, cutoff, config)
    except ValueError as exc:  # e.g. nothing to learn search from yet
        verdict.reason = f"no candidate: {exc}"
        return verdict
    verdict.candidate = score_search(SearchEngine(stack, "candidate", shop=shop), holdout)
    if verdict.serving_version is not None:
        verdict.serving = score_search(SearchEngine.load(shop, verdict.serving_version, warm=False), holdout)
    if not _decide(verdict, config):
        return _finish(verdict, started)
    verdict.version, _ = publish_stack(shop, stack, {**bundle_params, "retrain": verdict.to_dict()})
    return _finish(verdict, started)


# the decision -------------------------------------------------------------------------------------------
def _decide(verdict: Verdict, config: RetrainConfig) -> bool:
    if verdict.serving is None:
        verdict.decision, verdict.reason = "published", "no model was serving"
        return True
    assert verdict.candidate is not None
    if verdict.candidate >= verdict.serving - config.tolerance:
        verdict.decision = "published"
        verdict.reason = f"candidate {verdict.candidate:.4f} >= serving {verdict.serving:.4f} - {config.tolerance:g}"
        return True
    verdict.decision = "refused"
    verdict.reason = (f"regression: candidate {verdict.candidate:.4f} < serving {verdict.serving:.4f} - "
                      f"{config.tolerance:g}; {verdict.serving_version} keeps serving")
    return False


def _finish(verdict: Verdict, started: float) -> Verdict:
    verdict.seconds = round(time.perf_counter() - started, 2)
    return verdict


def record(shop: Shop, verdict: Verdict) -> None:
    """The decision into the log and ``SHOP/runs/retrain.jsonl``."""
    log.info("shop %s: %s %s: %s", shop.name, verdict.kind, verdict.decision, verdict.reason)
    path = shop.path / "runs" / "retrain.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"shop": shop.name, **verdict.to_dict()}) + "\n")


def retrain_once(shop: Shop, config: RetrainConfig | None = None, kinds: tuple[str, ...] = KINDS, *,
                 trainers: dict[str, Any] | None = None) -> list[Verdict]:
    """One round for each kind; every decision is recorded. A failing kind is recorded, never raised."""
    config = config or RetrainConfig()
    trainers = trainers or {}
    out = []
    for kind in kinds:
        run = retrain_recommend if kind == "recommend" else retrain_search
        try:
            verdict = run(shop, config, trainers.get(kind))
        except Exception as exc:  # the serving model keeps serving
            log.exception("shop %s: retraining %s failed", shop.name, kind)
            verdict = Verdict(kind, "skipped", f"failed: {exc}"[:500])
        record(shop, verdict)
        out.append(verdict)
    return out


def watch(shop: Shop, every: float, config: RetrainConfig | None = None, *, rounds: int | None = None,
          stop: Any = None, on_round: Callable[[list[Verdict]], None] | None = None) -> None:
    """``retrain_once`` every ``every`` seconds (first round at once) until ``stop`` is set or ``rounds`` ran."""
    done = 0
    while rounds is None or done < rounds:
        verdicts = retrain_once(shop, config)
        if on_round is not None:
            on_round(verdicts)
        done += 1
        if rounds is not None and done >= rounds:
            return
        if stop is not None:
            if stop.wait(every):
                return
        else:
            time.sleep(every)
