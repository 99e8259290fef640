"""Train and publish a shop's "recommend" bundle: the sequence model and item-to-item tables.

The model learns from the leave-one-out training view (each user's log without its last two
events) and stops early on the second-to-last; so ``evaluate recommend`` can test the very
bundle that serves, on the last events, without leakage. Serving reads each user's whole
current history from the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.data.limits import EVENT_WEIGHTS
from shoprank.data.records import Event
from shoprank.recommend import artifacts
from shoprank.recommend.defences import DEFAULT as DEFAULT_DEFENCES
from shoprank.recommend.defences import Defences, apply_defences
from shoprank.recommend.evaluate import LooViews, leave_one_out
from shoprank.recommend.interactions import TYPE_WEIGHTS, Catalogue, Sequences, events_to_sequences
from shoprank.recommend.item2item import basket_pairs, covisitation
from shoprank.recommend.sources import trending_signal
from shoprank.recommend.text import DEFAULT_MAX_LENGTH, cached_item_vectors
from shoprank.recommend.training import RecTrainConfig, profile_config, profile_settings, train_sasrec
from shoprank.shops import Shop
from shoprank.training.profiles import PROFILE_NAMES

TREND_DAYS = 7.0  # the baseline bundle's window (it has no validation targets to choose one on)
TREND_WINDOWS: tuple[float | None, ...] = (1.0, 7.0, 30.0, 90.0, None)  # None: the whole training log


@dataclass
class ShopLog:
    catalogue: Catalogue
    seqs: Sequences
    events: list[Event]
    fingerprint: dict[str, Any]

    def split(self) -> LooViews:
        return leave_one_out(self.seqs, len(self.catalogue))


def read_log(shop: Shop, defences: Defences | None = None) -> ShopLog:
    """The shop's catalogue and every user's event sequence, from its store; with ``defences``, the events they
    drop (shoprank.recommend.defences) are left out and the fingerprint's ``defences`` says what was dropped."""
    with shop.store(create=False) as store:
        catalogue = Catalogue.from_products(store.iter_products())
        events = list(store.iter_events())
    return log_of(catalogue, events, defences)


def log_of(catalogue: Catalogue, events: list[Event], defences: Defences | None = None) -> ShopLog:
    """A :class:`ShopLog` of time-ordered ``events``, after ``defences`` when given."""
    read = len(events)
    report = None
    if defences is not None:
        events, report = apply_defences(events, defences)
    seqs = events_to_sequences(events, catalogue)
    fingerprint: dict[str, Any] = {"events": read, "users": len(seqs),
                                   "last_event": max((e.timestamp for e in events), default=0.0)}
    if report is not None:
        fingerprint.update(events_trained=len(events), defences=defences.to_dict(),  # type: ignore[union-attr]
                           defences_removed=report.to_dict()["removed"])
    return ShopLog(catalogue, seqs, events, fingerprint)


def item_vectors(shop: Shop, log: ShopLog, encoder: str = "default", progress: bool = False,
                 max_length: int = DEFAULT_MAX_LENGTH, ray: Any = None) -> np.ndarray:
    """(n_items + 1, dim) text vectors, row 0 zeros; cached under the shop's ``cache/`` folder; embedded across
    the workers of ``ray`` (a :class:`~shoprank.cluster.RayConfig`) when given."""
    vectors = cached_item_vectors(log.catalogue.texts, encoder, shop.path / "cache", progress=progress,
                                  max_length=max_length, ray=ray)
    return np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])


def training_events(log: ShopLog, split: LooViews) -> list[Event]:
    """The events of the training view, in time order: each user's events without the ones the split holds out
    (so nothing a test or validation target saw feeds popularity, trending or bought-together)."""
    kept = {user: len(items) for user, items in zip(split.train.users, split.train.items, strict=True)}
    seen: dict[str, int] = {}
    out = []
    for e in log.events:
        n = seen.get(e.user_id, 0)
        seen[e.user_id] = n + 1
        if n < kept.get(e.user_id, 0):
            out.append(e)
    return out


def popularity(log: ShopLog, n_items: int, train: Sequences, events: list[Event] | None = None,
               days: float | None = TREND_DAYS) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted event counts of the training view, the same over the last ``days`` of the training events
    (the log's own time, not the wall clock; None: all of them), and the time that window ends."""
    flat = np.concatenate(train.items) if len(train) else np.zeros(0, np.int64)
    weights = np.concatenate([TYPE_WEIGHTS[t] for t in train.types]) if len(train) else None
    pop = np.bincount(flat, weights=weights, minlength=n_items + 1).astype(np.float32)
    events = log.events if events is None else events
    until = max((e.timestamp for e in events), default=0.0)
    since = until - days * 86400 if days is not None else -np.inf
    trend = np.zeros(n_items + 1, np.float32)
    for e in events:
        if e.timestamp >= since and e.item_id in log.catalogue.index:
            trend[log.catalogue.index[e.item_id]] += EVENT_WEIGHTS.get(e.type, 0.0)
    return pop, trend, until


def choose_trend_window(log: ShopLog, split: LooViews, events: list[Event],
                        windows: tuple[float | None, ...] = TREND_WINDOWS) -> tuple[float | None, list[dict[str, Any]]]:
    """The trending window whose list best predicts the validation targets with every history hidden (the
    new-user protocol, on validation): the window and each one's validation NDCG@10. A shop whose log spans
    months and a shop whose log spans days want different windows; the log decides, not a constant."""
    n_items = len(log.catalogue)
    targets = np.asarray(split.valid_targets, np.int64)
    table = []
    for days in windows:
        pop, trend, _ = popularity(log, n_items, split.train, events, days=days)
        scores = trending_signal(trend, pop)
        scores[0] = -np.inf  # padding
        r = _ranks(scores)[targets]
        ndcg = float(np.where(r <= 10, 1.0 / np.log2(r + 1.0), 0.0).mean()) if len(r) else 0.0
        table.append({"days": days, "valid_ndcg@10": round(ndcg, 5)})
    best = max(table, key=lambda row: row["valid_ndcg@10"])  # first of equals: the shortest window
    return best["days"], table


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every item under ``scores``, ties pessimistic (an item loses every tie), as
    :func:`shoprank.evaluation.metrics.rank_of_target` counts them."""
    ordered = np.sort(scores)
    return (len(scores) - np.searchsorted(ordered, scores, side="left")).astype(np.float64)


COVISIT_WINDOW, COVISIT_KEEP = 50, 200  # co-visitation over whole (<= 50-event) histories: best on validation
def tune(split: LooViews, vectors: np.ndarray, base: RecTrainConfig, trials: int, *, progress: bool = True,
         seed: int = 0) -> dict[str, Any]:
    """Optuna search over learning rate, dropout, weight decay, width and ID dropout; best valid NDCG@10."""
    from dataclasses import replace

    import optuna

    def objective(trial: optuna.Trial) -> float:
        cfg = replace(
            base,
            model=replace(base.model, dropout=trial.suggest_float("dropout", 0.1, 0.5),
                          d_model=trial.suggest_categorical("d_model", [32, 64, 128]),
                          id_dropout=trial.suggest_float("id_dropout", 0.0, 0.4)),
            train=replace(base.train, learning_rate=trial.suggest_float("learning_rate", 3e-4, 5e-3, log=True),
                          weight_decay=trial.suggest_float("weight_decay", 1e-3, 0.3, log=True), log_dir=None),
        )

        def report(epoch: int, ndcg: float) -> None:
            trial.report(ndcg, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        _, summary = train_sasrec(split.train, split.valid_histories, split.valid_targets, vectors, cfg,
                                  progress=False, on_epoch=report)
        if progress:
            print(f"trial {trial.number}: valid NDCG@10 {summary['best_valid_ndcg@10']:.4f} {trial.params}")
        return float(summary["best_valid_ndcg@10"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_warmup_steps=1))
    study.optimize(objective, n_trials=trials)
    return {"best_params": study.best_params, "best_value": study.best_value, "trials": len(study.trials)}


def fit(log: ShopLog, split: LooViews, vectors: np.ndarray, config: RecTrainConfig, *, progress: bool = True,
        params: dict[str, Any] | None = None, facts: tuple[np.ndarray, np.ndarray, list[str]] | None = None,
        ray: Any = None) -> tuple[artifacts.RecArtifacts, dict[str, Any]]:
    """Train the model on ``split``, build the item-to-item tables and fit the ranking stage on validation, in
    memory: the artifacts (not yet published) and the training summary. ``facts``: the items' category codes,
    prices and category names (:func:`shoprank.recommend.features.item_facts`); ``ray``: a
    :class:`~shoprank.cluster.RayConfig`: the sequence model trains data-parallel on its workers."""
    from shoprank.recommend.ranker import fit_ranking

    n_items = len(log.catalogue)
    if ray is not None:
        from shoprank.cluster.training import train_sasrec_on_ray

        model, summary = train_sasrec_on_ray(split.train, split.valid_histories, split.valid_targets, vectors,
                                             config, ray)
        if progress:
            print(f"trained on Ray with {summary['ray']['workers']} workers ({summary['ray']['cluster']} cluster): "
                  f"best valid NDCG@10 {summary['best_valid_ndcg@10']:.4f} at epoch {summary['best_epoch']}")
    else:
        model, summary = train_sasrec(split.train, split.valid_histories, split.valid_targets, vectors, config,
                                      progress=progress)
    train_events = training_events(log, split)
    trend_days, trend_table = choose_trend_window(log, split, train_events)
    pop, trend, trend_until = popularity(log, n_items, split.train, train_events, days=trend_days)
    bought, basket_counts = basket_pairs(train_events, log.catalogue.index, n_items)
    art = artifacts.RecArtifacts(
        model=model,
        item_ids=list(log.catalogue.ids),
        text_vectors=vectors,
        popularity=pop,
        trending=trend,
        counts=split.train_counts.astype(np.float32),
        covisit=covisitation(split.train, n_items, window=COVISIT_WINDOW, keep=COVISIT_KEEP),
        bought=bought,
        params={
            **(params or {}),
            "trend_until": trend_until, "trend_days": trend_days, "trend_windows": trend_table,
            "bought_together": basket_counts,
            "log": log.fingerprint,
            "training": {k: v for k, v in summary.items() if k != "history"},
            "train": config.train.to_dict(),
            "categories": facts[2] if facts else [],
        },
        categories=facts[0] if facts else None,
        prices=facts[1] if facts else None,
    )
    fit_ranking(art, split.valid_histories, split.valid_targets, split.train_counts, progress=progress,
                config=stage_config(config.profile))
    return art, summary


def train_recommender(shop: Shop, profile: str = "quick", *, tune_trials: int = 0, encoder: str = "default",
                      threads: int = 1, log_dir: str | Path | None = None, progress: bool = True,
                      defences: Defences | None = DEFAULT_DEFENCES, ray: Any = None,
                      **overrides: Any) -> dict[str, Any]:
    """Train the sequence model and item-to-item tables on ``shop``'s log and publish a bundle.

    ``defences``: the shilling-like events dropped first (shoprank.recommend.defences; ``None``: learn from every
    event); the summary's ``defences`` says what each defence removed. ``ray``: a
    :class:`~shoprank.cluster.RayConfig`: the catalogue is embedded and the sequence model trained on its workers
    (the bundle is published only once the whole job has succeeded)."""
    if ray is None:
        return _train_recommender(shop, profile, tune_trials, encoder, threads, log_dir, progress, defences, None,
                                  overrides)
    from shoprank.cluster import cluster

    with cluster(ray):  # one cluster for the embedding and the training
        return _train_recommender(shop, profile, tune_trials, encoder, threads, log_dir, progress, defences, ray,
                                  overrides)


def _train_recommender(shop: Shop, profile: str, tune_trials: int, encoder: str, threads: int,
                       log_dir: str | Path | None, progress: bool, defences: Defences | None, ray: Any,
                       overrides: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    log = read_log(shop, defences)
    if not log.seqs.users:
        raise ValueError(f"shop {shop.name!r} has no events: nothing to learn recommendations from")
    n_items = len(log.catalogue)
    text_length = int(profile_settings(profile)["text"]["max_length"]) if profile in PROFILE_NAMES \
        else DEFAULT_MAX_LENGTH
    vectors = item_vectors(shop, log, encoder, progress, text_length, ray=ray)
    split = log.split()
    if log_dir is None:
        log_dir = shop.path / "runs" / f"recommend-{time.strftime('%Y%m%d-%H%M%S')}"
    config = profile_config(profile, n_items, vectors.shape[1], threads=threads, log_dir=str(log_dir), **overrides)
    tuned: dict[str, Any] = {}
    if tune_trials > 0:
        tuned = tune(split, vectors, config, tune_trials, progress=progress)
        best = tuned["best_params"]
        config = profile_config(profile, n_items, vectors.shape[1], threads=threads, log_dir=str(log_dir),
                                **{**overrides, **best})
    art, summary = fit(log, split, vectors, config, progress=progress,
                       params={"profile": profile, "encoder": encoder, "text_max_length": text_length,
                               "tuning": tuned}, facts=_facts(shop, log), ray=ray)
    version = artifacts.save(shop.models_path, art)
    return {"version": version, "profile": profile, "ranker": _ranker_summary(art),
            "items": n_items, "users": len(log.seqs),
            "events": log.fingerprint["events"], "tensorboard": str(log_dir),
            **{k: v for k, v in summary.items() if k != "history"}, "training_seconds": summary["seconds"],
            "seconds": time.perf_counter() - started, "tuning": tuned,
            "defences": log.fingerprint.get("defences_removed")}


def stage_config(profile: str) -> Any:
    """The ranking stage's settings of a training profile (its ``stage`` section; defaults otherwise)."""
    from shoprank.recommend.ranker import StageConfig

    return StageConfig(**(profile_settings(profile).get("stage", {}) if profile in PROFILE_NAMES else {}))


def _facts(shop: Shop, log: ShopLog) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from shoprank.recommend.features import item_facts

    with shop.store(create=False) as store:
        return item_facts(list(store.iter_products()), log.catalogue.ids)


def _ranker_summary(art: artifacts.RecArtifacts) -> dict[str, Any]:
    r = art.params["ranker"]
    return {k: r[k] for k in ("valid_ndcg_at_10", "union_recall_valid", "best_iteration", "cold_slot_threshold",
                              "fit_groups", "stop_users", "seconds")}


def reblend(shop: Shop, *, progress: bool = True) -> dict[str, Any]:
    """Keep the latest bundle's sequence model; rebuild the item-to-item tables, fit the ranking stage again on
    validation, publish a new version.

    Refused when the shop's log has changed since the bundle was trained (the validation view would differ).
    """
    started = time.perf_counter()
    art = artifacts.load(shop.models_path, upgrade=True)
    stored = art.params.get("log", {}).get("defences")
    log = read_log(shop, Defences.from_dict(stored) if stored else None)
    if art.params.get("log", {}).get("events") != log.fingerprint["events"] or art.item_ids != log.catalogue.ids:
        raise ValueError("the shop's log changed since the latest bundle was trained: train it again instead")
    from shoprank.recommend.ranker import fit_ranking

    split = log.split()
    art.covisit = covisitation(split.train, len(log.catalogue), window=COVISIT_WINDOW, keep=COVISIT_KEEP)
    train_events = training_events(log, split)
    art.bought, art.params["bought_together"] = basket_pairs(train_events, log.catalogue.index, len(log.catalogue))
    days, art.params["trend_windows"] = choose_trend_window(log, split, train_events)  # training events only
    art.popularity, art.trending, art.params["trend_until"] = popularity(log, len(log.catalogue), split.train,
                                                                         train_events, days=days)
    art.params["trend_days"] = days
    art.categories, art.prices, art.params["categories"] = _facts(shop, log)
    fit_ranking(art, split.valid_histories, split.valid_targets, split.train_counts, progress=progress,
                config=stage_config(str(art.params.get("profile", "quick"))))
    art.params["reblended_from"] = art.version
    version = artifacts.save(shop.models_path, art)
    return {"version": version, "from": art.version, "ranker": _ranker_summary(art),
            "seconds": time.perf_counter() - started}
