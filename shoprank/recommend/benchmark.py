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
from shoprank.recommend.evaluate import K, LooSplit, ModelResult, run_scorer, summarise, validation_ndcg
from shoprank.recommend.interactions import Sequences
from shoprank.shops import Shop

ALL_MODELS = ("random", "popular", "itemknn", "als", "bpr", "text", "sasrec")
ALS_GRID = {"factors": (64, 128), "alpha": (2.0, 10.0, 40.0), "regularization": (0.05,)}


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def tune_als(split: LooSplit, grid: dict[str, Sequence[float]] | None = None, progress: bool = False,
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


def _fit_view_with_valid(split: LooSplit) -> Sequences:
    """Test histories (tested users first, in test order) plus the untested users: for models that cannot fold in."""
    n = len(split.test_histories)
    t = split.test_histories
    return Sequences(t.users + split.train.users[n:], t.items + split.train.items[n:], t.types + split.train.types[n:])


def peer_result(name: str, split: LooSplit, vectors: np.ndarray, als_params: dict[str, float] | None = None,
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


def sasrec_result(shop: Shop, split: LooSplit, item_ids: list[str], fingerprint: dict[str, Any]) -> ModelResult:
    """The published bundle, scored exactly as served (``Recommender.score_batch``)."""
    from shoprank.recommend.service import Recommender

    rec = Recommender.load(shop)
    logged = rec.art.params.get("log", {})
    if logged.get("events") != fingerprint["events"] or rec.catalogue.ids[:len(item_ids)] != item_ids:
        raise ValueError(
            f"the latest recommend bundle ({rec.version}) was trained on {logged.get('events')} events, the shop now "
            f"has {fingerprint['events']}: run 'shoprank train recommend --shop {shop.name}' before evaluating it"
        )
    types = split.test_histories.types

    def score(h: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        return rec.score_batch(h, [types[i] for i in rows])[:, :split.n_items + 1]

    started = time.perf_counter()
    ranks, top = run_scorer(score, split.test_histories, split.test_targets, batch_size=512,
                            last_slot=rec.cold_slot_items)
    profile = rec.art.params.get("profile", "?")
    return ModelResult(f"shoprank SASRec ({profile})", ranks, top, time.perf_counter() - started,
                       f"bundle {rec.version}")


def evaluate_shop(shop: Shop, models: Sequence[str] = ALL_MODELS, *, threads: int = 1, progress: bool = True,
                  tune_als_grid: bool = False, extra: Sequence[ModelResult] = ()) -> dict[str, Any]:
    """Every requested model on the shop's leave-one-out split: table rows plus per-user ranks."""
    import torch

    from shoprank.bundles import latest_version, open_bundle
    from shoprank.recommend.pipeline import item_vectors, read_log
    from shoprank.recommend.text import DEFAULT_MAX_LENGTH

    torch.set_num_threads(threads)
    log = read_log(shop)
    split = log.split()
    encoder, text_length = "default", DEFAULT_MAX_LENGTH
    if latest_version(shop.models_path, "recommend"):
        params = open_bundle(shop.models_path, "recommend", verify=False).params
        encoder = params.get("encoder", "default")
        text_length = int(params.get("text_max_length", DEFAULT_MAX_LENGTH))
    vectors = item_vectors(shop, log, encoder, max_length=text_length)
    results: list[ModelResult] = []
    als_params: dict[str, float] | None = None
    tuning: list[dict[str, float]] = []
    for name in models:
        _say(progress, f"evaluating {name}...")
        if name == "sasrec":
            results.append(sasrec_result(shop, split, list(log.catalogue.ids), log.fingerprint))
            continue
        if name == "als" and tune_als_grid:
            als_params, tuning = tune_als(split, progress=progress)
        results.append(peer_result(name, split, vectors, als_params))
    results += list(extra)
    rows = [summarise(r, split, vectors) for r in results]
    cold = split.train_counts[split.test_targets] <= 2
    return {"users": len(split.test_targets), "items": split.n_items, "cold_users": int(cold.sum()), "k": K,
            "rows": rows, "als_tuning": tuning, "results": results, "split": split, "vectors": vectors,
            "catalogue": log.catalogue}
