"""LambdaMART settings and candidate depth for the online (`fast`) search ranker, compared on validation
queries only: the held-out test queries are never touched, so a setting chosen here can be adopted honestly.

    python -m bench.fusion_variants --home /tmp/sh2 --shop homedepot [--depths 200,400] [--tune 20]

It reuses the shop's latest search bundle (its query tower, indices and catalogue vectors) and the same
split as `shoprank train search`: LambdaMART learns on the fusion queries; the validation queries are cut
in two by query, one half for early stopping (and Optuna's objective with --tune), the other half searched
over the whole catalogue exactly like the test protocol (NDCG@10, Recall@100 of grade >= 2.5).
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from dataclasses import replace
from typing import Any

from bench.common import table, write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="/tmp/sh2")
    parser.add_argument("--shop", default="homedepot")
    parser.add_argument("--depths", default="200", help="BM25 and vector candidates per query, comma-separated")
    parser.add_argument("--truncation", default="30,100,300",
                        help="LambdaMART truncation levels to compare (30 is LightGBM's default)")
    parser.add_argument("--tune", type=int, default=0, metavar="N", help="also N Optuna trials (at truncation 100)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from shoprank.data.splits import split_by_query
    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k
    from shoprank.ranking.features import FEATURES
    from shoprank.ranking.fusion import FusionConfig, FusionRanker
    from shoprank.search.run_eval import load_held_out, relevant_gain
    from shoprank.search.stack import FAST_FEATURES
    from shoprank.search.train import SearchTrainConfig, fusion_rows, tune_fusion
    from shoprank.shops import Shop

    torch.set_num_threads(args.threads)
    shop = Shop(args.shop, args.home)
    bundle, data, base = load_held_out(shop, load_cross=False)
    split = SearchTrainConfig()
    parts = split_by_query(data.train, test_share=split.fusion_share, valid_share=split.valid_share,
                           seed=split.seed + 1)
    fusion_q, valid_q = data.query_set(parts.test), data.query_set(parts.valid)
    valid = [q for q in valid_q.queries() if max(valid_q.gains[q].values()) > 0]
    random.Random(0).shuffle(valid)
    stop_half, compare_half = valid[: len(valid) // 2], valid[len(valid) // 2:]
    columns = list(FAST_FEATURES)
    idx = [FEATURES.index(c) for c in columns]
    good = relevant_gain(data)
    rows: list[list[Any]] = []
    out: list[dict[str, Any]] = []
    for depth in [int(d) for d in args.depths.split(",")]:
        stack = copy.copy(base)  # the same indices and models, deeper candidate lists
        stack.config = replace(base.config, lexical_k=depth, dense_k=depth)
        started = time.perf_counter()
        train = fusion_rows(stack, fusion_q, fusion_q.queries(), True, f"fusion features, depth {depth}", ["fast"])
        stop = fusion_rows(stack, valid_q, stop_half, True, "early-stopping features", ["fast"])
        compare = []
        for q, qvec in zip(compare_half, stack.encode_queries(compare_half), strict=True):
            tokens = stack.tokens(q)
            cand = stack.candidates(tokens, qvec)
            compare.append((q, cand.rows, stack.features(q, tokens, cand.rows, cand.dense)[:, idx]))
        pool = float(np.mean([len(r) for _, r, _ in compare]))
        features_s = time.perf_counter() - started
        x, g, groups = train["fast"].arrays(columns)
        stop_arrays = stop["fast"].arrays(columns)

        def measure(ranker: FusionRanker, compare: list = compare) -> tuple[float, float]:
            ndcg, recall = [], []
            for q, cand_rows, feats in compare:
                gains = valid_q.gains[q]
                ranked = [base.catalog.ids[r] for r in cand_rows[np.argsort(-ranker.predict(feats), kind="stable")]]
                ndcg.append(ndcg_at_k(ranked, gains, 10))
                relevant = {p for p, v in gains.items() if v >= good}
                if relevant:
                    recall.append(recall_at_k(ranked, relevant, 100))
            return float(np.mean(ndcg)), float(np.mean(recall))

        configs = {f"truncation {t}": FusionConfig(truncation_level=int(t), threads=args.threads)
                   for t in args.truncation.split(",")}
        if args.tune:
            tuned, _ = tune_fusion(train["fast"], stop["fast"], FusionConfig(threads=args.threads), args.tune,
                                   columns)
            configs[f"Optuna, {args.tune} trials"] = tuned
        for name, config in configs.items():
            ranker = FusionRanker(columns, config).fit(x, g, groups, valid=stop_arrays)
            ndcg, recall = measure(ranker)
            rows.append([depth, round(pool), name, ranker.best_iteration, f"{ndcg:.4f}", f"{recall:.4f}"])
            out.append({"depth": depth, "mean_candidates": pool, "variant": name, "trees": ranker.best_iteration,
                        "ndcg@10": ndcg, "recall@100": recall, "config": config.__dict__,
                        "features_seconds": round(features_s, 1)})
    print(f"\n{len(fusion_q.queries()):,} fusion queries; validation: {len(stop_half):,} for early stopping, "
          f"{len(compare_half):,} compared (search bundle {bundle.version})\n")
    print(table(["depth", "candidates", "variant", "trees", "ndcg@10", "recall@100"], rows))
    command = "python -m bench.fusion_variants " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    path = write_json("fusion_variants", {"command": command, "bundle": bundle.version, "results": out,
                                          "fusion_queries": len(fusion_q.queries()), "stop_queries": len(stop_half),
                                          "compare_queries": len(compare_half)})
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
