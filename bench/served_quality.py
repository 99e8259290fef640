"""The served search path of several trained shops side by side: full-catalogue NDCG@10 and Recall@100.

    python -m bench.served_quality --shop homedepot --home /tmp/hd-base --home /tmp/hd-distilled
    python -m bench.served_quality --shop homedepot --home /tmp/hd-base --home /tmp/hd-distilled --test  # once

Each home holds the same shop trained differently (e.g. ``shoprank train search --doc-tower distilled`` in one).
Every query is answered by the shop's cascade as the server answers it (``shoprank.search.run_eval.served_search``:
the bundle's int8 query tower, the result set, the shop's re-ranking settings, exploration off), the first 100
results kept. Queries: the **validation** queries of each bundle's training split (as ``shoprank train search``
split them; homes trained with the same profile and seed share them), or with ``--test`` the held-out test
queries (read once, for the configuration chosen on validation). NDCG@10 gain = grade - lowest grade; Recall@100
of products graded at least lowest + 0.75 x range (2.5 on Home Depot's 1-3 scale). Queries alternate which home
answers first, and each answer's cascade time is kept (median).
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


def queries_of(shop: Any, test: bool) -> tuple[Any, list[str], float, str]:
    """(query set, queries with a relevant product, the recall grade, bundle version) of the shop's bundle."""
    from shoprank.bundles import open_bundle
    from shoprank.search.data import SPLIT_SEED, load_search_data
    from shoprank.search.run_eval import relevant_gain
    from shoprank.search.train import profile_config, split_training

    bundle = open_bundle(shop.models_path, "search", verify=False)
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=bundle.params["holdout"],
                                seed=bundle.params.get("split_seed", SPLIT_SEED))
    split = data.test if test else split_training(data, profile_config(bundle.params.get("profile", "full"))).valid
    qset = data.query_set(split)
    return qset, [q for q in qset.queries() if max(qset.gains[q].values()) > 0], relevant_gain(data), bundle.version


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--home", action="append", required=True, help="a shop home (repeat: compared side by side)")
    parser.add_argument("--test", action="store_true", help="the held-out test queries (read once)")
    parser.add_argument("--max-queries", type=int, default=None, help="a sample of this many queries (seed 0)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm

    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k
    from shoprank.search.run_eval import served_search
    from shoprank.serving.registry import limit_threads
    from shoprank.shops import Shop

    limit_threads(1)
    shops = [Shop(args.shop, home) for home in args.home]
    found = [queries_of(shop, args.test) for shop in shops]
    qset, queries, grade, _ = found[0]
    for home, (other, other_queries, _, _) in zip(args.home[1:], found[1:], strict=True):
        if other_queries != queries or any(other.gains[q] != qset.gains[q] for q in queries):
            raise SystemExit(f"{home}: its bundle split other queries (train every home with the same profile)")
    if args.max_queries is not None and len(queries) > args.max_queries:
        queries = sorted(random.Random(0).sample(queries, args.max_queries), key=queries.index)
    served = [served_search(shop) for shop in shops]
    for serve in served:
        for q in queries[:5]:
            serve(q, TOP)  # warm-up
    ids: list[list[list[str]]] = [[] for _ in shops]
    ms: list[list[float]] = [[] for _ in shops]
    for i, q in enumerate(tqdm(queries, desc="served")):
        for j in [*range(i % len(shops), len(shops)), *range(i % len(shops))]:
            began = time.perf_counter()
            ids[j].append(served[j](q, TOP))
            ms[j].append(1000 * (time.perf_counter() - began))
    rows = []
    for home, (_, _, _, version), got, times in zip(args.home, found, ids, ms, strict=True):
        ndcg = [ndcg_at_k(r, qset.gains[q], 10) for q, r in zip(queries, got, strict=True)]
        recall = [recall_at_k(r, {p for p, g in qset.gains[q].items() if g >= grade}, TOP)
                  for q, r in zip(queries, got, strict=True) if any(g >= grade for g in qset.gains[q].values())]
        rows.append({"home": home, "bundle": version, "queries": len(queries),
                     "ndcg@10": round(float(np.mean(ndcg)), 4), "recall@100": round(float(np.mean(recall)), 4),
                     "cascade_ms_median": round(float(np.median(times)), 2)})
    split = "test (held out, read once)" if args.test else "validation"
    print(f"{args.shop}: {len(queries)} {split} queries")
    print(table(["home", "bundle", "queries", "NDCG@10", "Recall@100", "cascade ms (median)"],
                [list(r.values()) for r in rows]))
    out = {"shop": args.shop, "split": split, "rows": rows}
    print(write_json(f"served-quality-{args.shop}-{'test' if args.test else 'valid'}{args.tag}", out))
    return out


if __name__ == "__main__":
    main()
