"""Choosing the dense candidate stage on VALIDATION queries: what an approximate index costs in recall against
the exact scan, what it saves per query, and what it does to the served path.

    python -m bench.dense_choice --home H --shop homedepot                      # validation only
    python -m bench.dense_choice --home H --shop homedepot --test hnsw-m32-ef128   # then the test queries, once

The bundle's validation queries (``split_training`` of its profile) with a relevant product, embedded with the
served query tower (int8 ONNX). Two tables:

* **the dense stage alone**: each index answers the dense top ``dense_k`` one query at a time on one thread
  (as the server runs an engine call), all indices side by side per query so machine load hits them alike.
  ``exact (served scan)`` is what the result set does on a flat index (the cosine of every product, the
  threshold, the top ``dense_k``); ``recall@k`` is the share of the exact top k the index returns in its top k.
  IVF and int8 / float16 scans are measured here only: the result set takes the approximate path for HNSW
  indices alone.
* **the served path**: the shop's cascade (as ``shoprank.search.run_eval.served_search``) with the bundle's
  vector index swapped for each setting: NDCG@10 and Recall@100 (products graded >= lowest + 0.75 * range) of
  the first 100 served, the share of exact's first 100 the setting serves, ``total`` against exact's, and the
  cascade's milliseconds per query (settings side by side per query, the first one rotating; query cache off).

``--test SETTING`` reads the held-out test queries once, exact beside SETTING (the configuration that ships).
``--max-queries N`` samples N validation queries (seed 0). Timings on a loaded machine are noisy: only the
side-by-side ratios mean much.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common import table, write_json

TOP = 100


def exact_top(vectors: np.ndarray, qvecs: np.ndarray, alive: np.ndarray, k: int) -> np.ndarray:
    """Exact top ``k`` live rows per query, most similar first, ties by row (as the result set), (q, k)."""
    out = np.zeros((len(qvecs), k), np.int64)
    for start in range(0, len(qvecs), 64):
        cos = qvecs[start:start + 64] @ vectors.T
        cos[:, ~alive[: vectors.shape[0]]] = -np.inf
        for i, row in enumerate(cos):
            cut = np.partition(row, len(row) - k)[len(row) - k]
            top = np.flatnonzero(row >= cut)
            out[start + i] = top[np.lexsort((top, -row[top]))][:k]
    return out


def parse_setting(name: str) -> dict[str, Any]:
    """``exact``, ``hnsw-m32-ef128``, ``ivf1024-p32``, ``sq8``, ``fp16``."""
    if name == "exact":
        return {"name": name, "kind": "exact"}
    if name in ("sq8", "fp16"):
        return {"name": name, "kind": name}
    parts = name.split("-")
    try:
        if parts[0] == "hnsw" and len(parts) == 3:
            return {"name": name, "kind": "hnsw", "m": int(parts[1][1:]), "ef": int(parts[2][2:])}
        if parts[0].startswith("ivf") and len(parts) == 2:
            return {"name": name, "kind": "ivf", "nlist": int(parts[0][3:]), "nprobe": int(parts[1][1:])}
    except ValueError:
        pass
    raise SystemExit(f"unknown setting {name!r}: exact, hnsw-m<M>-ef<EF>, ivf<NLIST>-p<NPROBE>, sq8 or fp16")


class Indices:
    """Every setting's index over the same vectors, built once per structure (efSearch/nprobe set per search)."""

    def __init__(self, vectors: np.ndarray, ef_construction: int) -> None:
        self.vectors = vectors
        self.ef_construction = ef_construction
        self.built: dict[str, Any] = {}
        self.build_s: dict[str, float] = {}

    def structure(self, s: dict[str, Any]) -> str:
        return {"hnsw": f"hnsw-m{s.get('m')}", "ivf": f"ivf{s.get('nlist')}"}.get(s["kind"], s["kind"])

    def get(self, s: dict[str, Any]) -> Any:
        import faiss

        from shoprank.retrieval.dense import DenseIndex

        key = self.structure(s)
        if key not in self.built:
            began = time.perf_counter()
            dim = self.vectors.shape[1]
            if s["kind"] == "hnsw":
                index: Any = DenseIndex(dim, "hnsw", s["m"], s["ef"], self.ef_construction).build(self.vectors)
            elif s["kind"] == "ivf":
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, s["nlist"], faiss.METRIC_INNER_PRODUCT)
                index.train(self.vectors)
                index.add(self.vectors)
            elif s["kind"] in ("sq8", "fp16"):
                qt = faiss.ScalarQuantizer.QT_8bit if s["kind"] == "sq8" else faiss.ScalarQuantizer.QT_fp16
                index = faiss.IndexScalarQuantizer(dim, qt, faiss.METRIC_INNER_PRODUCT)
                index.train(self.vectors)
                index.add(self.vectors)
            else:
                index = None
            if s["kind"] == "hnsw":
                index._ready()  # the graph is made on first use: build it now, timed
            self.built[key] = index
            self.build_s[key] = round(time.perf_counter() - began, 1)
        return self.built[key]

    def search(self, s: dict[str, Any], qvec: np.ndarray, k: int, alive: np.ndarray, threshold: float) -> np.ndarray:
        """The setting's dense top ``k`` rows for one query (what the stage costs is what this call costs)."""
        index = self.get(s)
        if s["kind"] == "exact":  # the result set's flat path: every cosine, the threshold, the top k
            from shoprank.search.matching import _nearest

            cos = self.vectors @ qvec
            live = alive[: len(cos)]
            np.flatnonzero((cos >= threshold) & live)
            return _nearest(cos, live, k)
        if s["kind"] == "hnsw":
            index.set_ef_search(s["ef"])
            return index.search(qvec[None, :], k, alive)[0][0]
        if s["kind"] == "ivf":
            index.nprobe = s["nprobe"]
        return index.search(qvec[None, :], k)[1][0]


def dense_stage(indices: Indices, settings: list[dict[str, Any]], qvecs: np.ndarray, truth: np.ndarray,
                alive: np.ndarray, threshold: float, k: int, progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    for s in settings:
        indices.get(s)
    times: dict[str, list[float]] = {s["name"]: [] for s in settings}
    recall: dict[str, list[float]] = {s["name"]: [] for s in settings}
    recall100: dict[str, list[float]] = {s["name"]: [] for s in settings}
    for i in tqdm(range(len(qvecs)), desc="dense stage", disable=not progress):
        order = settings[i % len(settings):] + settings[: i % len(settings)]  # rotate who goes first
        for s in order:
            began = time.perf_counter()
            rows = indices.search(s, qvecs[i], k, alive, threshold)
            times[s["name"]].append(time.perf_counter() - began)
            rows = rows[rows >= 0]
            recall[s["name"]].append(len(np.intersect1d(rows[:k], truth[i, :k])) / k)
            recall100[s["name"]].append(len(np.intersect1d(rows[:TOP], truth[i, :TOP])) / TOP)
    out = []
    for s in settings:
        t = np.asarray(times[s["name"]]) * 1000
        out.append({"setting": s["name"], f"recall@{k}": round(float(np.mean(recall[s["name"]])), 4),
                    f"recall@{TOP}": round(float(np.mean(recall100[s["name"]])), 4),
                    f"min recall@{k}": round(float(np.min(recall[s["name"]])), 3),
                    "median ms": round(float(np.median(t)), 3), "p99 ms": round(float(np.percentile(t, 99)), 3),
                    "build s": indices.build_s.get(indices.structure(s), 0.0)})
    return out


def served(shop: Any, indices: Indices, settings: list[dict[str, Any]], queries: Sequence[str], qset: Any,
           relevant_gain: float, progress: bool) -> list[dict[str, Any]]:
    """Each setting through the shop's cascade: NDCG@10, Recall@100, overlap with exact, ``total``, engine ms."""
    from tqdm.auto import tqdm

    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade
    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k
    from shoprank.search.query_cache import QueryCache

    cascade = load_cascade(shop, ("search",))
    engine = getattr(cascade.search, "engine", cascade.search)
    page_size = cascade.reranking.reranker.config.page_size
    engine.query_cache = QueryCache(0, engine.query_cache.fold_case)  # every call embeds its query: settings
    # side by side must not share a cache
    flat = engine.stack.dense
    for s in settings:
        if s["kind"] not in ("exact", "hnsw"):
            raise SystemExit(f"{s['name']}: the result set serves flat and HNSW indices only")

    def use(s: dict[str, Any]) -> None:
        engine.stack.dense = flat if s["kind"] == "exact" else indices.get(s)
        if s["kind"] == "hnsw":
            engine.stack.dense.set_ef_search(s["ef"])

    runs: dict[str, dict[str, list[Any]]] = {s["name"]: {"ids": [], "total": [], "ms": []} for s in settings}
    for s in settings:
        use(s)
        for q in queries[:5]:
            cascade.run_one(Request("search", q, per_page=page_size, limit=TOP))  # warm-up
    for i, q in enumerate(tqdm(queries, desc="served", disable=not progress)):
        for s in settings[i % len(settings):] + settings[: i % len(settings)]:  # side by side, who goes first rotates
            use(s)
            began = time.perf_counter()
            page = cascade.run_one(Request("search", q, per_page=page_size, limit=TOP))
            run = runs[s["name"]]
            run["ms"].append(time.perf_counter() - began)
            run["ids"].append(page.ids)
            run["total"].append(page.total)
    engine.stack.dense = flat
    exact = runs["exact"]
    out = []
    for s in settings:
        run = runs[s["name"]]
        ndcg, recall, overlap, same_total, ratio = [], [], [], 0, []
        for q, ids, ref, total, ref_total in zip(queries, run["ids"], exact["ids"], run["total"], exact["total"],
                                                 strict=True):
            gains = qset.gains[q]
            relevant = {p for p, g in gains.items() if g >= relevant_gain}
            ndcg.append(ndcg_at_k(ids, gains, 10))
            if relevant:
                recall.append(recall_at_k(ids, relevant, TOP))
            overlap.append(len(set(ids) & set(ref)) / len(ref) if ref else 1.0)
            same_total += total == ref_total
            if ref_total:
                ratio.append(total / ref_total)
        out.append({"setting": s["name"], "queries": len(queries), "ndcg@10": round(float(np.mean(ndcg)), 4),
                    "recall@100": round(float(np.mean(recall)), 4),
                    "top-100 shared with exact": round(float(np.mean(overlap)), 4),
                    "same total": f"{same_total}/{len(queries)}",
                    "total / exact (mean)": round(float(np.mean(ratio)), 4) if ratio else "—",
                    "total / exact (min)": round(float(np.min(ratio)), 3) if ratio else "—",
                    "median total": int(np.median(run["total"])),
                    "cascade ms (median)": round(1000 * float(np.median(run["ms"])), 2),
                    "cascade ms (p99)": round(1000 * float(np.percentile(run["ms"], 99)), 2)})
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--stage", default="exact,hnsw-m16-ef128,hnsw-m16-ef256,hnsw-m32-ef128,hnsw-m32-ef256,"
                        "ivf1024-p16,ivf1024-p64,sq8,fp16", help="settings of the dense-stage table")
    parser.add_argument("--served", default="exact,hnsw-m32-ef128,hnsw-m16-ef128",
                        help="settings run through the cascade (exact and HNSW only)")
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--max-queries", type=int, default=None, help="sample this many validation queries")
    parser.add_argument("--test", default=None, help="read the held-out test queries once: exact beside this")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from shoprank.bundles import open_bundle
    from shoprank.search.data import SPLIT_SEED, load_search_data
    from shoprank.search.matching import dense_threshold
    from shoprank.search.run_eval import relevant_gain
    from shoprank.search.train import profile_config, split_training
    from shoprank.serving.registry import limit_threads
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    bundle = open_bundle(shop.models_path, "search", verify=False)
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=bundle.params["holdout"],
                                seed=bundle.params.get("split_seed", SPLIT_SEED))
    split = data.test if args.test else split_training(data, profile_config(bundle.params.get("profile", "full"))).valid
    qset = data.query_set(split)
    queries = [q for q in qset.queries() if max(qset.gains[q].values()) > 0]
    if args.max_queries is not None and len(queries) > args.max_queries:
        queries = sorted(random.Random(0).sample(queries, args.max_queries), key=queries.index)
    from shoprank.search import SearchEngine

    engine = SearchEngine.load(shop, onnx_queries=True, query_cache=0)
    stack = engine.stack
    vectors, alive, k = stack.dense.vectors, stack.catalog.alive, stack.config.dense_k
    threshold = dense_threshold(stack.config)
    limit_threads(2)  # building
    indices = Indices(vectors, args.ef_construction)
    qvecs = np.stack([engine.embed_query(q) for q in queries]).astype(np.float32)
    truth = exact_top(vectors, qvecs, alive, k)
    split_name = "test (held out, read once)" if args.test else "validation"
    print(f"bundle {bundle.version}: {len(queries)} {split_name} queries, {len(vectors):,} products, "
          f"dense_k {k}, threshold {threshold}")
    result: dict[str, Any] = {"bundle": bundle.version, "split": split_name, "queries": len(queries),
                              "products": int(len(vectors)), "dense_k": k, "threshold": threshold}
    stage = [parse_setting(n) for n in (["exact", args.test] if args.test else args.stage.split(","))]
    for s in stage:
        indices.get(s)  # build on two threads, search on one
    limit_threads(1)
    rows = dense_stage(indices, stage, qvecs, truth, alive, threshold, k, not args.quiet)
    print(table(list(rows[0]), [list(r.values()) for r in rows]))
    result["dense_stage"] = rows
    settings = [parse_setting(n) for n in (["exact", args.test] if args.test else args.served.split(","))]
    limit_threads(2)
    for s in settings:
        indices.get(s)
    limit_threads(1)
    rows = served(shop, indices, settings, queries, qset, relevant_gain(data), not args.quiet)
    print(table(list(rows[0]), [list(r.values()) for r in rows]))
    result["served"] = rows
    print(write_json(f"dense-choice-{args.shop}-{'test' if args.test else 'valid'}", result))
    return result


if __name__ == "__main__":
    main()
