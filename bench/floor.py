"""The CPU floor of one search against the path that is served, in-process, one thread.

    python -m bench.floor --home H --shop homedepot [--queries 300] [--dense bundle|hnsw]

The floor is the work no search can skip: embedding the query (the served query tower, its cache off) and the
candidate scans (BM25 over the catalogue; the dense stage: the exact scan of a flat index, or the graph search
of an HNSW one, top ``dense_k``). The served path is everything the search route does but the HTTP layer: the
shop's cascade (the result set, ranking, re-ranking rules, the page's reasons), hydrating the page, the facet
counts and the JSON encoding. Both are timed as the thread's CPU time (``time.thread_time``), query by query,
one after the other, so the machine's load stretches both alike. ``--dense hnsw`` swaps a flat bundle's index
for the graph a bundle trained today gets (``shoprank.retrieval.dense`` defaults), built here, to show what
the next training run serves. Writes bench/results/floor_<shop>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json
from bench.serve import percentile, request_paths


def load_state(home: str, shop: str, dense: str) -> Any:
    """The shop as the server holds it (registry state, one engine thread), its dense index as asked."""
    from shoprank.retrieval.dense import DenseIndex
    from shoprank.search.query_cache import QueryCache
    from shoprank.serving.common import engine_of
    from shoprank.serving.registry import EngineRegistry, limit_threads

    state = EngineRegistry(home).get(shop)
    engine = engine_of(state, "search")
    limit_threads(1)  # after loading, as the server does: the load imports the libraries it caps
    stack = engine.stack
    if dense == "hnsw" and stack.dense.kind != "hnsw":
        began = time.perf_counter()
        stack.dense = DenseIndex(stack.dense.dim, "hnsw").build(stack.dense.vectors)
        stack.dense.search(stack.dense.vectors[:1], 1)  # the graph is made on first use
        print(f"built an HNSW graph over {len(stack.dense.vectors):,} vectors in {time.perf_counter() - began:.0f} s")
    engine.query_cache = QueryCache(0, engine.query_cache.fold_case)  # every query embedded, on both sides
    return state


def floor_cpu(engine: Any, query: str) -> dict[str, float]:
    """Thread CPU seconds of the unavoidable stages for ``query``."""
    from shoprank.search.matching import _graph_nearest

    stack = engine.stack
    out = {}
    t = time.thread_time()
    qvec = stack.embed_query(query)
    out["encode"] = time.thread_time() - t
    t = time.thread_time()
    tokens = stack.tokens(query)
    stack.bm25.score(tokens)
    out["bm25"] = time.thread_time() - t
    t = time.thread_time()
    alive = stack.catalog.alive
    if stack.dense.kind == "hnsw":
        _graph_nearest(stack.dense, qvec, alive, stack.config.dense_k)
    else:
        cos = stack.dense.vectors @ np.asarray(qvec, np.float32)
        np.argpartition(-cos, min(stack.config.dense_k, len(cos) - 1))
    out["dense"] = time.thread_time() - t
    return out


def served_cpu(state: Any, query: str, facet_candidates: int | None = None) -> float:
    """Thread CPU seconds of what the search route does for ``query`` (page 1 of 10, facets on, counted over as
    many of the set's products as the server counts: ``ServingConfig.facet_candidates`` unless given)."""
    from shoprank.cascade import Request
    from shoprank.rerank.shop import request_seed
    from shoprank.results import SearchFilters
    from shoprank.serving.common import engine_of, json_response
    from shoprank.serving.config import ServingConfig
    from shoprank.serving.read_routes import _cascade
    from shoprank.serving.synonym_routes import with_synonyms

    cap = ServingConfig().facet_candidates if facet_candidates is None else facet_candidates
    t = time.thread_time()
    engine = with_synonyms(state, engine_of(state, "search"))
    ask = Request("search", query, filters=SearchFilters(), page=1, per_page=10, facets=True, explore=True,
                  seed=request_seed(query, None))
    answer = _cascade(state, search=engine).run_one(ask)
    hits = state.catalog.hydrate(answer.items)
    counts = state.catalog.facets(answer.facet_ids[:cap])
    json_response({"hits": hits, "facets": counts, "total": answer.total, "model_version": answer.model_version})
    return time.thread_time() - t


def run(home: str, shop: str, queries: Sequence[str], dense: str) -> dict[str, Any]:
    from shoprank.serving.common import engine_of

    state = load_state(home, shop, dense)
    engine = engine_of(state, "search")
    for q in queries[:20]:  # warm-up
        served_cpu(state, q)
    stages: dict[str, list[float]] = {"encode": [], "bm25": [], "dense": [], "floor": [], "served": []}
    for q in queries[20:]:
        parts = floor_cpu(engine, q)
        for name, value in parts.items():
            stages[name].append(value)
        stages["floor"].append(sum(parts.values()))
        stages["served"].append(served_cpu(state, q))
    summary = {name: {"median_ms": 1000 * statistics.median(v), "p99_ms": 1000 * percentile(v, 99),
                      "mean_ms": 1000 * statistics.fmean(v)} for name, v in stages.items()}
    return {"dense": engine.stack.dense.kind, "products": int(engine.stack.catalog.alive.sum()),
            "queries": len(queries) - 20, "stages": summary,
            "served_over_floor_mean": summary["served"]["mean_ms"] / summary["floor"]["mean_ms"]}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--queries", type=int, default=300, help="queries timed (after 20 warm-up ones)")
    parser.add_argument("--dense", choices=("bundle", "hnsw"), default="bundle",
                        help="the bundle's own dense index, or an HNSW graph built here with today's defaults")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    queries = [urllib.parse.unquote(p.split("q=")[1].split("&")[0])
               for p in request_paths(Path(args.home), args.shop, "search", args.queries + 20)]
    result = run(args.home, args.shop, queries, args.dense)
    labels = {"encode": "encode the query (as served)", "bm25": "BM25 over the catalogue",
              "dense": f"dense stage ({result['dense']})", "floor": "floor: the three above",
              "served": "served path (cascade, hydrate, facets, JSON)"}
    rows = [[labels[name], round(v["median_ms"], 2), round(v["p99_ms"], 2), round(v["mean_ms"], 2)]
            for name, v in result["stages"].items()]
    print(table(["stage (thread CPU)", "median ms", "p99 ms", "mean ms"], rows))
    print(f"served / floor (means): {result['served_over_floor_mean']:.2f}x over {result['queries']} queries, "
          f"{result['products']:,} products")
    print(write_json(args.out or f"floor_{args.shop}", {"args": vars(args), **result}))
    return result


if __name__ == "__main__":
    main()
