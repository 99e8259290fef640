"""Recall@100's ceiling: the share of held-out queries' relevant products (grade >= 2.5) that the candidate
pool (BM25 top k united with the vector index's top k) holds at all, for several k.

    python -m bench.candidate_recall --home /tmp/sh2 --shop homedepot [--depths 100,200,400,800] [--max-queries 400]

Uses the shop's latest search bundle and the held-out queries it recorded; nothing is trained.
"""

from __future__ import annotations

import argparse

from bench.common import table, write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="/tmp/sh2")
    parser.add_argument("--shop", default="homedepot")
    parser.add_argument("--depths", default="100,200,400,800")
    parser.add_argument("--max-queries", type=int, default=400, help="the bench's fixed sample (0: all held out)")
    args = parser.parse_args()

    import numpy as np

    from shoprank.search.run_eval import _sample, load_held_out, relevant_gain
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    bundle, data, stack = load_held_out(shop, load_cross=False)
    test = data.query_set(data.test)
    queries = _sample([q for q in test.queries() if max(test.gains[q].values()) > 0], args.max_queries or None)
    good = relevant_gain(data)
    depths = [int(d) for d in args.depths.split(",")]
    recall: dict[int, list[float]] = {d: [] for d in depths}
    size: dict[int, list[int]] = {d: [] for d in depths}
    for q, qvec in zip(queries, stack.encode_queries(queries), strict=True):
        relevant = {p for p, g in test.gains[q].items() if g >= good}
        if not relevant:
            continue
        tokens = stack.tokens(q)
        for d in depths:
            cand = stack.candidates(tokens, qvec, d, d)
            held = {stack.catalog.ids[r] for r in cand.rows}
            recall[d].append(len(relevant & held) / len(relevant))
            size[d].append(len(cand.rows))
    rows = [[d, round(float(np.mean(size[d]))), f"{np.mean(recall[d]):.4f}"] for d in depths]
    print(f"\n{len(recall[depths[0]]):,} held-out queries with a relevant product (search bundle {bundle.version})\n")
    print(table(["k (BM25 and vectors)", "candidates", "pool recall"], rows))
    path = write_json("candidate_recall", {
        "command": f"python -m bench.candidate_recall --home {args.home} --shop {args.shop} --depths {args.depths} "
                   f"--max-queries {args.max_queries}", "bundle": bundle.version, "queries": len(recall[depths[0]]),
        "results": [{"k": d, "candidates": float(np.mean(size[d])), "pool_recall": float(np.mean(recall[d]))}
                    for d in depths]})
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
