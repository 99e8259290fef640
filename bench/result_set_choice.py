"""Choosing the result set's definition on VALIDATION queries: which set keeps Recall@100 of the ranking with no
result set, and what it costs in random-letter queries that answer something.

    python -m bench.result_set_choice --home H --shop homedepot

One pass over the bundle's validation queries (``split_training`` of its profile; the held-out test queries are
never read) through the served engine (int8 ONNX query tower): for each query the ranking with no result set
(the pool the ranker was trained on, BM25 top ``lexical_k`` united with the dense top ``dense_k``, ordered by
the fusion model), which products match lexically, and every cosine. Each candidate set definition is then
replayed on that ranking: its members in that order (the rest of the set after them is not replayed, so
short lists count as they are: a lower bound). Rows:

* ``abs T``: a product matches lexically or with cosine >= T (T = the bundle's calibrated threshold, and a grid);
* ``rel M``: as the calibrated one, and, for a query that matches something lexically, every product of its
  dense top ``dense_k`` within M of its best cosine;
* ``own pool``: the calibrated threshold with the ranker run on the set's own pool (the lexical top and the
  dense top above the threshold), as before this choice: its pool-relative features (price against the pool's
  median, cosine against the best) change with the threshold, so products the set keeps move.

Columns: NDCG@10 and Recall@100 (products graded >= lowest + 0.75 * range, as ``shoprank evaluate search``),
relevant products of the first 100 the set drops, dense-only products it adds below the calibrated threshold
(mean per query), and random-letter queries (``calibration.nonsense_queries``) that match nothing.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench.common import table, write_json

TOP = 100
GRID = (0.30, 0.35, 0.40, 0.42, 0.46, 0.50)
MARGINS = (0.1, 0.2, 0.3)


def collect(shop: Any, progress: bool) -> dict[str, Any]:
    """Per validation query: the ranking with no result set (ids), lexical flags, cosines, gains."""
    from tqdm.auto import tqdm

    from shoprank.bundles import open_bundle
    from shoprank.search import SearchEngine
    from shoprank.search.calibration import nonsense_queries
    from shoprank.search.data import SPLIT_SEED, load_search_data
    from shoprank.search.matching import dense_threshold
    from shoprank.search.stack import Candidates
    from shoprank.search.train import profile_config, split_training

    bundle = open_bundle(shop.models_path, "search", verify=False)
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=bundle.params["holdout"],
                                seed=bundle.params.get("split_seed", SPLIT_SEED))
    valid = data.query_set(split_training(data, profile_config(bundle.params.get("profile", "full"))).valid)
    engine = SearchEngine.load(shop, onnx_queries=True)
    stack = engine.stack
    threshold = dense_threshold(stack.config)
    alive = stack.catalog.alive
    ids = stack.catalog.ids
    queries = [q for q in valid.queries() if max(valid.gains[q].values()) > 0]
    rows: list[dict[str, Any]] = []
    for q in tqdm(queries, desc="validation queries", disable=not progress):
        tokens, qvec = stack.tokens(q), engine.embed_query(q)
        cos = stack.dense.vectors @ qvec
        cos[~alive[: len(cos)]] = -2.0
        lexical = stack.bm25.score(tokens) > 0
        lexical[~alive[: len(lexical)]] = False
        cand = stack.candidates(tokens, qvec)
        order, _, _ = stack.rank(q, tokens, cand, False)
        ranked = cand.rows[order]
        keep = lexical[cand.rows] | (cos[cand.rows] >= threshold)  # the set's own pool, ranked by itself
        own = Candidates(cand.rows[keep], cand.bm25[keep], cand.dense[keep], int(keep.sum()))
        own_order, _, _ = stack.rank(q, tokens, own, False) if len(own.rows) else (np.zeros(0, int), None, None)
        rows.append({"query": q, "lexical_matches": int(lexical.sum()), "best": float(cos.max()),
                     "ranked": [ids[r] for r in ranked], "cos": cos[ranked].tolist(),
                     "lexical": lexical[ranked].tolist(), "own": [ids[r] for r in own.rows[own_order]]})
    nonsense = []
    for q in nonsense_queries():
        cos = stack.dense.vectors @ engine.embed_query(q)
        cos[~alive[: len(cos)]] = -2.0
        nonsense.append({"lexical": bool((stack.bm25.score(stack.tokens(q)) > 0).any()), "best": float(cos.max())})
    return {"bundle": bundle.version, "threshold": threshold, "queries": rows, "nonsense": nonsense,
            "gains": {r["query"]: valid.gains[r["query"]] for r in rows}, "relevant_gain": 0.75 * data.top_gain}


def replay(run: dict[str, Any]) -> list[dict[str, Any]]:
    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k

    t0 = run["threshold"]

    def score(name: str, member: Any, listed: Any = None, lower: float = t0) -> dict[str, Any]:
        ndcg, recall, lost, added = [], [], 0, []
        for row in run["queries"]:
            gains = run["gains"][row["query"]]
            relevant = {p for p, g in gains.items() if g >= run["relevant_gain"]}
            cos, lex = np.asarray(row["cos"]), np.asarray(row["lexical"], bool)
            if listed is not None:
                ids = listed(row)
            else:
                keep = lex | member(row, cos)
                ids = [pid for pid, k in zip(row["ranked"], keep, strict=True) if k]
                added.append(int((keep & ~lex & (cos < t0)).sum()))
            ndcg.append(ndcg_at_k(ids, gains, 10))
            if relevant:
                recall.append(recall_at_k(ids, relevant, TOP))
                lost += len(relevant & set(row["ranked"][:TOP]) - set(ids[:TOP]))
        empty = sum(not n["lexical"] and n["best"] < lower for n in run["nonsense"])
        return {"set": name, "ndcg@10": round(float(np.mean(ndcg)), 4), "recall@100": round(float(np.mean(recall)), 4),
                "relevant_dropped": lost, "dense_added": round(float(np.mean(added)), 1) if added else "—",
                "nonsense_empty": empty}

    out = [score("no result set", lambda r, c: np.ones(len(c), bool), lower=-9.0)]
    for t in sorted({round(t0, 3), *GRID}):
        out.append(score(f"abs {t:.3f}{' (calibrated)' if abs(t - t0) < 1e-9 else ''}",
                         lambda r, c, t=t: c >= t, lower=t))
    for m in MARGINS:
        out.append(score(f"rel {m} (lexical queries)",
                         lambda r, c, m=m: c >= (min(t0, r["best"] - m) if r["lexical_matches"] else t0)))
    out.append(score(f"own pool, abs {t0:.3f}", None, listed=lambda r: r["own"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--shop", default="homedepot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    import torch

    from shoprank.shops import Shop

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    run = collect(Shop(args.shop, args.home), not args.quiet)
    rows = replay(run)
    write_json("result_set_choice", {"bundle": run["bundle"], "threshold": run["threshold"],
                                     "queries": len(run["queries"]), "rows": rows,
                                     "seconds": round(time.perf_counter() - started, 1)})
    print(f"bundle {run['bundle']}, calibrated threshold {run['threshold']}, {len(run['queries'])} validation "
          f"queries, {len(run['nonsense'])} random-letter queries")
    keys = ["ndcg@10", "recall@100", "relevant_dropped", "dense_added", "nonsense_empty"]
    print(table(["set", *keys], [[r["set"], *[r[k] for k in keys]] for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
