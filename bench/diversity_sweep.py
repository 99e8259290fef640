"""The diversity trade-off of the re-ranker: one row per λ, for recommendations and for search.

    python bench/diversity_sweep.py recommend --shop games --home /tmp/srhome --sample 5000
    python bench/diversity_sweep.py search --shop homedepot --home /tmp/srhome --sample 1000

For each test user (a fixed random sample of ``--sample``; 0 = all) the published bundle scores the
whole catalogue exactly as the harness does (``Recommender.score_batch``, seen items masked), the top
``OVER_FETCH × 10`` go through the shop's re-ranker at λ (exploration off, as in every evaluation), and
the first 10 are measured with ``shoprank.evaluation.metrics``: NDCG@10 and HR@10 of the held-out item,
intra-list diversity@10 (1 − mean pairwise cosine of the items' text vectors), category coverage@10
(distinct categories / 10), catalogue coverage@10 (distinct items over all sampled users / catalogue)
and novelty (mean −log2 of the share of training users who had the item).

Search: the latest search bundle's held-out judged queries (a fixed sample of ``--sample``), the online
ranking (``SearchEngine.search``, no cross-encoder) over-fetched the same way; NDCG@10 with the judged
grades, HR@10 = a judged-relevant product in the first 10, novelty from the share of training queries
that judged the product, the text vectors of the search stack.

Writes bench/results/diversity_sweep_TASK.json and docs/diversity_tradeoff.png (a panel per task run),
and picks the default: the λ with the most diversity among those losing at most 1 % relative NDCG@10
and raising intra-list diversity by at least 15 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K = 10
MAX_NDCG_LOSS, MIN_ILD_GAIN = 0.01, 0.15


def score_top(rec: Any, split: Any, rows: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full-catalogue rank of each sampled user's target and their top ``depth`` (indices, scores)."""
    from shoprank.evaluation.metrics import rank_of_target
    from shoprank.recommend.evaluate import mask_seen

    hist, types = split.test_histories.items, split.test_histories.types
    ranks = np.empty(len(rows))
    top = np.empty((len(rows), depth), np.int64)
    top_scores = np.empty((len(rows), depth))
    for start in range(0, len(rows), 512):
        batch = rows[start:start + 512]
        h = [hist[r] for r in batch]
        s = mask_seen(np.array(rec.score_batch(h, [types[r] for r in batch])[:, :split.n_items + 1],
                               dtype=np.float32), h)
        ranks[start:start + len(batch)] = rank_of_target(s, split.test_targets[batch], ties="average")
        part = np.argpartition(-s, depth, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        top[start:start + len(batch)] = best
        top_scores[start:start + len(batch)] = np.take_along_axis(s, best, axis=1)
    return ranks, top, top_scores


def sweep_recommend(shop: Any, lambdas: list[float], n_users: int, seed: int, over_fetch: int) -> dict[str, Any]:
    from shoprank.evaluation.metrics import (
        catalog_coverage,
        category_coverage,
        intra_list_diversity,
        item_probabilities,
        loo_metrics,
        novelty,
    )
    from shoprank.recommend.pipeline import read_log
    from shoprank.recommend.service import Recommender
    from shoprank.rerank import Reranker
    from shoprank.results import ScoredItem

    started = time.perf_counter()
    log = read_log(shop)
    split = log.split()
    rec = Recommender.load(shop)
    if rec.catalogue.ids[:split.n_items] != list(log.catalogue.ids):
        raise SystemExit(f"bundle {rec.version} does not match the shop's catalogue: retrain it first")
    n_test = len(split.test_targets)
    rng = np.random.default_rng(seed)
    rows = np.arange(n_test) if not n_users or n_users >= n_test else np.sort(rng.choice(n_test, n_users, False))
    print(f"{len(rows):,} of {n_test:,} test users, {split.n_items:,} items, bundle {rec.version}", flush=True)
    ranks, top, top_scores = score_top(rec, split, rows, over_fetch * K)
    print(f"  scored in {time.perf_counter() - started:.0f} s", flush=True)

    with shop.store(create=False) as store:
        products = {p.id: p for p in store.iter_products()}
        rerankers = {lam: Reranker.from_store(store, diversity=lam) for lam in lambdas}
    text = np.asarray(rec.art.text_vectors[:split.n_items + 1], dtype=np.float64)
    index = rec.catalogue.index

    def vectors(ids: list[str]) -> np.ndarray:
        return text[[index[i] for i in ids]]

    ids_of = rec.catalogue.ids
    train_users = np.zeros(split.n_items + 1)
    for seq in split.train.items:
        train_users[np.unique(seq)] += 1
    counts = {ids_of[i - 1]: float(c) for i, c in enumerate(train_users) if i and c > 0}
    probability = item_probabilities(counts, n_users=len(split.train))
    unseen = 1.0 / len(split.train)
    category = {pid: p.category.casefold() for pid, p in products.items()}

    results = []
    for lam, reranker in rerankers.items():
        reranker.config = reranker.config.for_evaluation()
        t0 = time.perf_counter()
        new_ranks = np.full(len(rows), K + 1.0)  # K + 1: the target is not in the first K
        ild, cat, nov, lists = [], [], [], []
        for u in range(len(rows)):
            items = [ScoredItem(ids_of[i - 1], float(s)) for i, s in zip(top[u], top_scores[u], strict=True)
                     if np.isfinite(s)]
            page = [item.id for item in reranker.rerank(items, products, vectors, None, rng=0)[:K]]
            target = ids_of[split.test_targets[rows[u]] - 1]
            if target in page:
                new_ranks[u] = page.index(target) + 1
            ild.append(intra_list_diversity(vectors(page)))
            cat.append(category_coverage([category.get(pid, "") for pid in page]))
            nov.append(novelty(page, probability, unseen_probability=unseen))
            lists.append(page)
        loo = loo_metrics(new_ranks, K)
        row = {"lambda": lam, f"ndcg@{K}": loo[f"ndcg@{K}"], f"hr@{K}": loo[f"hr@{K}"],
               f"ild@{K}": float(np.mean(ild)), f"category_coverage@{K}": float(np.mean(cat)),
               f"catalogue_coverage@{K}": catalog_coverage(lists, split.n_items), "novelty": float(np.mean(nov)),
               "seconds": round(time.perf_counter() - t0, 1)}
        results.append(row)
        print(f"  λ={lam:g}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "lambda"), flush=True)
    harness = loo_metrics(ranks, K)
    return {"shop": shop.name, "bundle": rec.version, "users": int(len(rows)), "test_users": int(n_test),
            "items": int(split.n_items), "seed": seed, "over_fetch": over_fetch, "k": K,
            "harness_ndcg@10_on_sample": harness[f"ndcg@{K}"], "rows": results,
            "seconds": round(time.perf_counter() - started, 1)}


def sweep_search(shop: Any, lambdas: list[float], n_queries: int, seed: int, over_fetch: int) -> dict[str, Any]:
    """The same sweep for search: the held-out judged queries of the latest bundle, the online ranking."""
    import random

    from shoprank.bundles import open_bundle
    from shoprank.cli._rerank import search_context
    from shoprank.evaluation.metrics import (
        catalog_coverage,
        category_coverage,
        intra_list_diversity,
        item_probabilities,
        ndcg_at_k,
        novelty,
    )
    from shoprank.rerank import Reranker
    from shoprank.search import SearchEngine
    from shoprank.search.data import SPLIT_SEED, load_search_data

    started = time.perf_counter()
    params = open_bundle(shop.models_path, "search").params
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=params["holdout"], seed=params.get("split_seed", SPLIT_SEED))
        rerankers = {lam: Reranker.from_store(store, diversity=lam) for lam in lambdas}
    test = data.query_set(data.test)
    queries = [q for q in test.queries() if max(test.gains[q].values()) > 0]
    n_test = len(queries)
    if n_queries and n_queries < n_test:
        queries = sorted(random.Random(seed).sample(queries, n_queries), key=queries.index)
    engine = SearchEngine.load(shop)
    print(f"{len(queries):,} of {n_test:,} held-out queries, {engine.stack.catalog.n_live:,} products, "
          f"search bundle {engine.version}", flush=True)
    ranked = {q: engine.search(q, k=over_fetch * K)[0] for q in queries}
    print(f"  searched in {time.perf_counter() - started:.0f} s", flush=True)
    train_queries = {j.query for j in data.train}
    judged: dict[str, float] = {}
    for j in data.train:
        judged[j.product_id] = judged.get(j.product_id, 0.0) + 1.0
    probability = item_probabilities(judged, n_users=len(train_queries))
    unseen = 1.0 / len(train_queries)

    results = []
    for lam, reranker in rerankers.items():
        reranker.config = reranker.config.for_evaluation()
        t0 = time.perf_counter()
        ndcg, hr, ild, cat, nov, lists = [], [], [], [], [], []
        for q, items in ranked.items():
            products, vectors = search_context(engine.stack, [item.id for item in items])
            page = [item.id for item in reranker.rerank(items, products, vectors, q, rng=0)[:K]]
            gains = test.gains[q]
            ndcg.append(ndcg_at_k(page, gains, K))
            hr.append(float(any(gains.get(pid, 0.0) > 0 for pid in page)))
            ild.append(intra_list_diversity(vectors(page)) if page else 0.0)
            cat.append(category_coverage([products[pid].category.casefold() if pid in products else ""
                                          for pid in page]))
            nov.append(novelty(page, {p: min(v, 1.0) for p, v in probability.items()}, unseen_probability=unseen))
            lists.append(page)
        row = {"lambda": lam, f"ndcg@{K}": float(np.mean(ndcg)), f"hr@{K}": float(np.mean(hr)),
               f"ild@{K}": float(np.mean(ild)), f"category_coverage@{K}": float(np.mean(cat)),
               f"catalogue_coverage@{K}": catalog_coverage(lists, engine.stack.catalog.n_live),
               "novelty": float(np.mean(nov)), "seconds": round(time.perf_counter() - t0, 1)}
        results.append(row)
        print(f"  λ={lam:g}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "lambda"), flush=True)
    return {"shop": shop.name, "bundle": engine.version, "queries": len(queries), "test_queries": n_test,
            "items": engine.stack.catalog.n_live, "seed": seed, "over_fetch": over_fetch, "k": K, "rows": results,
            "seconds": round(time.perf_counter() - started, 1)}


def choose(rows: list[dict[str, Any]], ndcg: str, ild: str) -> tuple[dict[str, Any] | None, str]:
    """The qualifying λ with the most diversity, and one line that says why (or why none qualifies)."""
    base = next(r for r in rows if r["lambda"] == 0)
    ok = [r for r in rows if r["lambda"] > 0 and r[ndcg] >= (1 - MAX_NDCG_LOSS) * base[ndcg]
          and r[ild] >= (1 + MIN_ILD_GAIN) * base[ild]]
    if ok:
        best = max(ok, key=lambda r: r[ild])
        return best, (f"λ = {best['lambda']:g}: NDCG@10 {best[ndcg]:.4f} vs {base[ndcg]:.4f} "
                      f"({best[ndcg] / base[ndcg] - 1:+.1%}), intra-list diversity {best[ild]:.4f} vs "
                      f"{base[ild]:.4f} ({best[ild] / base[ild] - 1:+.1%})")
    lines = [f"λ = {r['lambda']:g}: NDCG@10 {r[ndcg] / base[ndcg] - 1:+.1%}, ILD@10 {r[ild] / base[ild] - 1:+.1%}"
             for r in rows if r["lambda"] > 0]
    return None, "no λ keeps NDCG@10 within 1 % while raising ILD@10 by 15 %: " + "; ".join(lines)


def plot(curves: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (title, rows) in zip(axes[0], curves.items(), strict=True):
        x = [r[f"ild@{K}"] for r in rows]
        y = [r[f"ndcg@{K}"] for r in rows]
        ax.plot(x, y, "o-")
        for r, xi, yi in zip(rows, x, y, strict=True):
            ax.annotate(f"λ={r['lambda']:g}", (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
        base = rows[0]
        ax.axhline((1 - MAX_NDCG_LOSS) * base[f"ndcg@{K}"], color="grey", ls="--", lw=0.8, label="-1% NDCG@10")
        ax.axvline((1 + MIN_ILD_GAIN) * base[f"ild@{K}"], color="grey", ls=":", lw=0.8, label="+15% ILD@10")
        ax.set_xlabel("intra-list diversity@10 (1 - mean pairwise cosine, text vectors)")
        ax.set_ylabel("NDCG@10")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=("recommend", "search"), help="what to sweep")
    parser.add_argument("--shop", default=None, help="default: games for recommend, homedepot for search")
    parser.add_argument("--home", default="/tmp/srhome")
    parser.add_argument("--lambdas", default="0,0.1,0.2,0.3,0.5,0.7")
    parser.add_argument("--sample", type=int, default=5000,
                        help="a fixed random sample of test users / held-out queries (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--over-fetch", type=int, default=None,
                        help="candidates re-ranked per place (default: the batch commands' OVER_FETCH)")
    parser.add_argument("--name", default=None, help="result file bench/results/NAME.json "
                        "(default diversity_sweep_TASK; the plot shows the default files)")
    args = parser.parse_args()

    import torch

    from shoprank.cli._rerank import OVER_FETCH
    from shoprank.shops import Shop

    torch.set_num_threads(args.threads)
    lambdas = sorted({0.0, *(float(x) for x in args.lambdas.split(","))})
    shop = Shop(args.shop or {"recommend": "games", "search": "homedepot"}[args.task], args.home)
    run = sweep_recommend if args.task == "recommend" else sweep_search
    result = run(shop, lambdas, args.sample, args.seed, args.over_fetch or OVER_FETCH)
    rows = result["rows"]
    chosen, why = choose(rows, f"ndcg@{K}", f"ild@{K}")
    result["chosen"] = None if chosen is None else chosen["lambda"]
    result["why"] = why
    result["command"] = "python bench/diversity_sweep.py " + " ".join(sys.argv[1:])
    print(write_json(args.name or f"diversity_sweep_{args.task}", result))
    curves = {}
    for task, what in (("recommend", "test users"), ("search", "held-out queries")):
        path = RESULTS / f"diversity_sweep_{task}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            size = saved.get("users", saved.get("queries", 0))
            curves[f"{task}: {saved['shop']} ({size:,} {what})"] = saved["rows"]
    plot(curves, ROOT / "docs/diversity_tradeoff.png")
    cols = ["lambda", f"ndcg@{K}", f"hr@{K}", f"ild@{K}", f"category_coverage@{K}", f"catalogue_coverage@{K}",
            "novelty"]
    print(table(["λ", *cols[1:]], [[r[c] for c in cols] for r in rows]))
    print(why)


if __name__ == "__main__":
    main()
