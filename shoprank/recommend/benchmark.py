"""``evaluate recommend``: the published model and every peer on one leave-one-out split."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shoprank.recommend.baselines import (
    ALSScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    RandomScorer,
    SequenceScorer,
    TextMeanScorer,
)
from shoprank.recommend.evaluate import K, LooViews, ModelResult, run_scorer, summarise, validation_ndcg
from shoprank.recommend.interactions import Sequences
from shoprank.shops import Shop

ALL_MODELS = ("random", "popular", "itemknn", "als", "bpr", "text", "sasrec")
ALS_GRID = {"factors": (64, 128), "alpha": (2.0, 10.0, 40.0), "regularization": (0.05,)}


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def tune_als(split: LooViews, grid: dict[str, Sequence[float]] | None = None, progress: bool = False,
             ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Grid search of ALS on validation NDCG@10 (fit on the training view)."""
    grid = grid or ALS_GRID
    trials = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        scorer = ALSScorer(**params)  # type: ignore[arg-type]
        scorer.fit(split.train, split.n_items)
        scores = np.concatenate([scorer.score(split.valid_histories.items[s:s + 2048])
                                 for s in range(0, len(split.valid_targets), 2048)])
        ndcg = validation_ndcg(scores, split.valid_histories, split.valid_targets)
        trials.append({**params, "valid_ndcg@10": ndcg})
        _say(progress, f"  ALS {params}: valid NDCG@10 {ndcg:.4f}")
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    return {k: v for k, v in best.items() if k != "valid_ndcg@10"}, trials


def _fit_view_with_valid(split: LooViews) -> Sequences:
    """Test histories (tested users first, in test order) plus the untested users: for models that cannot fold in."""
    n = len(split.test_histories)
    t = split.test_histories
    return Sequences(t.users + split.train.users[n:], t.items + split.train.items[n:], t.types + split.train.types[n:])


def peer_result(name: str, split: LooViews, vectors: np.ndarray, als_params: dict[str, float] | None = None,
                ) -> ModelResult:
    scorer: SequenceScorer
    fit_on, note = split.train, ""
    if name == "random":
        scorer = RandomScorer()
    elif name == "popular":
        scorer = PopularScorer()
    elif name == "itemknn":
        scorer = ItemKNNScorer()
    elif name == "als":
        scorer = ALSScorer(**(als_params or {}))  # type: ignore[arg-type]
        note = f"params {als_params}" if als_params else ""
    elif name == "bpr":
        scorer, fit_on = BPRScorer(), _fit_view_with_valid(split)
        note = "fitted with the validation item (cannot fold in a history)"
    elif name == "text":
        scorer = TextMeanScorer(vectors)
    else:
        raise ValueError(f"unknown peer {name!r}; valid: {', '.join(ALL_MODELS)}")
    started = time.perf_counter()
    scorer.fit(fit_on, split.n_items)
    ranks, top = run_scorer(scorer.score, split.test_histories, split.test_targets)
    label = {"text": "untuned MiniLM, mean of history", "als": "implicit ALS"}.get(name, scorer.name)
    return ModelResult(label, ranks, top, time.perf_counter() - started, note)


def load_served(shop: Shop, item_ids: list[str], fingerprint: dict[str, Any]) -> Any:
    """The published bundle as served, refused when the shop's log has changed since it was trained."""
    from shoprank.recommend.service import Recommender

    rec = Recommender.load(shop)
    logged = rec.art.params.get("log", {})
    if logged.get("events") != fingerprint["events"] or rec.catalogue.ids[:len(item_ids)] != item_ids:
        raise ValueError(
            f"the latest recommend bundle ({rec.version}) was trained on {logged.get('events')} events, the shop now "
            f"has {fingerprint['events']}: run 'shoprank train recommend --shop {shop.name}' before evaluating it"
        )
    return rec


def served_ranks(rec: Any, histories: Sequences, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of ``targets`` and top-K lists through the served path: the ranking stage (``score_batch``, what
    ``recommend`` ranks) and the cold slot as ``recommend`` places it."""
    types = histories.types
    n = rec.n_items

    def score(h: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        return rec.score_batch(h, [types[i] for i in rows])[:, :n + 1]

    return run_scorer(score, histories, targets, batch_size=512, last_slot=rec.cold_slot_items)


def sasrec_result(shop: Shop, split: LooViews, item_ids: list[str], fingerprint: dict[str, Any],
                  rec: Any = None) -> ModelResult:
    """The published bundle, scored exactly as served (:func:`served_ranks`)."""
    rec = rec or load_served(shop, item_ids, fingerprint)
    started = time.perf_counter()
    ranks, top = served_ranks(rec, split.test_histories, split.test_targets)
    profile = rec.art.params.get("profile", "?")
    return ModelResult(f"shoprank SASRec + ranking stage ({profile})", ranks, top, time.perf_counter() - started,
                       f"bundle {rec.version}")


def sample_test_users(split: LooViews, n: int, seed: int = 0) -> LooViews:
    """``split`` with ``n`` of its test users (seed ``seed``); training and validation views unchanged."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(split.test_targets))[:n])
    t = split.test_histories
    return LooViews(split.n_items, split.train, split.valid_histories, split.valid_targets,
                    Sequences([t.users[i] for i in rows], [t.items[i] for i in rows], [t.types[i] for i in rows]),
                    split.test_targets[rows])


LENGTH_BINS = (("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6+", 6, 10**9))


def _cut(histories: Sequences, rows: np.ndarray, keep: int) -> Sequences:
    return Sequences([histories.users[i] for i in rows],
                     [histories.items[i][len(histories.items[i]) - keep:] if keep else histories.items[i][:0]
                      for i in rows],
                     [histories.types[i][len(histories.types[i]) - keep:] if keep else histories.types[i][:0]
                      for i in rows])


def history_breakdown(rec: Any, split: LooViews, ranks: np.ndarray, *, sample: int = 10_000,
                      seed: int = 0) -> list[dict[str, Any]]:
    """Test figures by history length, every serving path measured.

    ``as logged``: the test users grouped by the length of their own test history (``ranks`` from the full run).
    ``cut to L``: a sample of test users whose history is cut to its latest L events (L = 2, 1), and the
    new-user protocol (L = 0: the whole history hidden), each ranked through the served path."""
    from shoprank.evaluation.metrics import loo_metrics

    lengths = np.array([len(h) for h in split.test_histories.items])
    cold = split.train_counts[split.test_targets] <= 2

    def row(protocol: str, r: np.ndarray, c: np.ndarray) -> dict[str, Any]:
        m = loo_metrics(r, K) if len(r) else {f"ndcg@{K}": 0.0, f"hr@{K}": 0.0, "mrr": 0.0}
        return {"protocol": protocol, "users": int(len(r)), f"ndcg@{K}": m[f"ndcg@{K}"], f"hr@{K}": m[f"hr@{K}"],
                "mrr": m["mrr"], f"cold_hr@{K}": loo_metrics(r[c], K)[f"hr@{K}"] if c.any() else 0.0}

    rows = [row(f"as logged, history {name}", ranks[(lengths >= lo) & (lengths <= hi)],
                cold[(lengths >= lo) & (lengths <= hi)]) for name, lo, hi in LENGTH_BINS]
    picked = np.sort(np.random.default_rng(seed).permutation(len(lengths))[:sample])
    for keep in (2, 1, 0):
        r, _ = served_ranks(rec, _cut(split.test_histories, picked, keep), split.test_targets[picked])
        label = "new user (whole history hidden)" if keep == 0 else f"history cut to its latest {keep}"
        rows.append(row(label, r, cold[picked]))
    return rows


BREAKDOWN_COLUMNS = ("protocol", "users", f"ndcg@{K}", f"hr@{K}", "mrr", f"cold_hr@{K}")


def evaluate_shop(shop: Shop, models: Sequence[str] = ALL_MODELS, *, threads: int = 1, progress: bool = True,
                  tune_als_grid: bool = False, extra: Sequence[ModelResult] = (), breakdown: bool = False,
                  breakdown_sample: int = 10_000, sample: int = 0) -> dict[str, Any]:
    """Every requested model on the shop's leave-one-out split: table rows plus per-user ranks; with
    ``breakdown``, the served model's figures by history length (:func:`history_breakdown`). ``sample``: test
    that many test users (drawn with seed 0; 0: all), every model on the same ones."""
    import torch

    from shoprank.bundles import latest_version, open_bundle
    from shoprank.recommend.pipeline import item_vectors, read_log
    from shoprank.recommend.text import DEFAULT_MAX_LENGTH

    torch.set_num_threads(threads)
    log = read_log(shop)
    split = log.split()
    if 0 < sample < len(split.test_targets):
        split = sample_test_users(split, sample)
    encoder, text_length = "default", DEFAULT_MAX_LENGTH
    if latest_version(shop.models_path, "recommend"):
        params = open_bundle(shop.models_path, "recommend", verify=False).params
        encoder = params.get("encoder", "default")
        text_length = int(params.get("text_max_length", DEFAULT_MAX_LENGTH))
    vectors = item_vectors(shop, log, encoder, max_length=text_length)
    results: list[ModelResult] = []
    als_params: dict[str, float] | None = None
    tuning: list[dict[str, float]] = []
    by_length: list[dict[str, Any]] = []
    for name in models:
        _say(progress, f"evaluating {name}...")
        if name == "sasrec":
            rec = load_served(shop, list(log.catalogue.ids), log.fingerprint)
            results.append(sasrec_result(shop, split, list(log.catalogue.ids), log.fingerprint, rec))
            if breakdown:
                _say(progress, "  by history length...")
                by_length = history_breakdown(rec, split, results[-1].ranks, sample=breakdown_sample)
            continue
        if name == "als" and tune_als_grid:
            als_params, tuning = tune_als(split, progress=progress)
        results.append(peer_result(name, split, vectors, als_params))
    results += list(extra)
    rows = [summarise(r, split, vectors) for r in results]
    cold = split.train_counts[split.test_targets] <= 2
    return {"users": len(split.test_targets), "items": split.n_items, "cold_users": int(cold.sum()), "k": K,
            "rows": rows, "by_history_length": by_length, "als_tuning": tuning, "results": results, "split": split,
            "vectors": vectors,
            "catalogue": log.catalogue}
