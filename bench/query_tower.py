"""The served query tower (int8 ONNX) against PyTorch on a shop's held-out queries.

    python -m bench.query_tower --home shoprank-data --shop homedepot [--max-queries 300]

For each held-out query with a relevant product (the split the bundle recorded): the cosine between the two
towers' embeddings, and the engine's top 10 with each tower (NDCG@10 against the judgments, overlap of the
two lists). Also the median time of one query embedding with each. The query cache is off.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common import table, write_json


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("SHOPRANK_HOME", "shoprank-data"))
    parser.add_argument("--shop", required=True)
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    from shoprank.bundles import open_bundle
    from shoprank.evaluation.metrics import ndcg_at_k
    from shoprank.search import SearchEngine
    from shoprank.search.data import SPLIT_SEED, load_search_data
    from shoprank.serving.registry import limit_threads
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    params = open_bundle(shop.models_path, "search").params
    if not params.get("holdout"):
        raise SystemExit("the shop's search bundle held out no queries (trained with --holdout 0)")
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=params["holdout"], seed=params.get("split_seed", SPLIT_SEED))
    test = data.query_set(data.test)
    queries = [q for q in test.queries() if max(test.gains[q].values()) > 0][: args.max_queries]
    engines = {name: SearchEngine.load(shop, onnx_queries=name == "onnx", query_cache=0)
               for name in ("pytorch", "onnx")}
    limit_threads(1)  # as in the server
    served = engines["onnx"].query_backend
    if not served.startswith("onnx"):
        raise SystemExit(f"no ONNX query tower: {served}")
    stack = engines["onnx"].stack
    cosines, seconds = [], {"pytorch": [], "onnx": []}
    for q in queries:
        began = time.perf_counter()
        reference = stack.encode_queries([q])[0]
        seconds["pytorch"].append(time.perf_counter() - began)
        began = time.perf_counter()
        got = stack.embed_query(q)
        seconds["onnx"].append(time.perf_counter() - began)
        cosines.append(float(reference @ got))
    ndcg: dict[str, list[float]] = {"pytorch": [], "onnx": []}
    overlap = []
    for q in queries:
        tops = {}
        for name, engine in engines.items():
            tops[name] = [item.id for item in engine.search(q, k=10)[0]]
            ndcg[name].append(ndcg_at_k(tops[name], test.gains[q], 10))
        overlap.append(len(set(tops["pytorch"]) & set(tops["onnx"])) / max(1, len(tops["pytorch"])))
    cos = np.asarray(cosines)
    rows = [[name, f"{np.mean(ndcg[name]):.4f}", f"{1000 * np.median(seconds[name]):.2f}"] for name in ndcg]
    print(table(["query tower", "NDCG@10", "embed ms (median)"], rows))
    print(f"{len(queries)} held-out queries; {served}; cosine with PyTorch: min {cos.min():.4f}, "
          f"1st percentile {np.percentile(cos, 1):.4f}, mean {cos.mean():.4f}; top-10 overlap {np.mean(overlap):.3f}")
    result = {"shop": args.shop, "queries": len(queries), "served": served,
              "ndcg@10": {k: round(float(np.mean(v)), 4) for k, v in ndcg.items()},
              "embed_ms_median": {k: round(1000 * float(np.median(v)), 3) for k, v in seconds.items()},
              "cosine": {"min": round(float(cos.min()), 4), "p1": round(float(np.percentile(cos, 1)), 4),
                         "mean": round(float(cos.mean()), 4)},
              "top10_overlap": round(float(np.mean(overlap)), 4)}
    if not args.no_write:
        print(write_json(f"query-tower-{args.shop}", result))
    return result


if __name__ == "__main__":
    main()
