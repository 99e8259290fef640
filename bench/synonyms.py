"""Mined synonyms on Home Depot: full-catalogue NDCG@10 of BM25 with and without them, on held-out queries.

    python -m bench.synonyms [--sessions 20] [--seed 0]

The shop's usual split (``shoprank.search.data``: 20% of queries held out, seed 0) keeps the test queries out
of everything; the training queries are split again into log queries (80%) and validation queries (20%).
A click log is simulated on the log queries only: each is searched ``--sessions`` times, BM25 (the shop's
lexical index over titles) shows the top 10, and a simulated shopper (``shoprank.learning.simulate``) clicks
with relevance = (grade - 1) / 2 from the judgments. Synonyms are mined from that log
(``shoprank.synonyms.mine_synonyms``: shared clicks; the simulation has no sessions, so no reformulations);
the mining thresholds are chosen on the validation queries; the test queries are read once, with the chosen
thresholds and with none (off). The ranking is BM25 alone (not the fused ranker) so the effect is the
synonyms' own; a query is expanded by the synonyms' terms added to it (as served: ``WithSynonyms``).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.data.records import parse_judgment, parse_product
from shoprank.data.splits import split_by_query
from shoprank.evaluation.metrics import ndcg_at_k
from shoprank.learning.simulate import ShopperModel
from shoprank.retrieval.bm25 import BM25Index
from shoprank.search.data import SPLIT_SEED, TEST_SHARE
from shoprank.synonyms import MiningConfig, Synonyms, mine_synonyms
from shoprank.text import make_analyzer

CANDIDATES = {"overlap 0.3": MiningConfig(min_overlap=0.3), "overlap 0.5": MiningConfig(min_overlap=0.5),
              "overlap 0.7": MiningConfig(min_overlap=0.7), "overlap 0.5, 3 shared": MiningConfig(min_shared=3)}


def top_ids(index: BM25Index, ids: list[str], query: str, k: int) -> list[str]:
    scores = index.score(index.analyzer(query))
    if not np.any(scores > 0):
        return []
    from shoprank.cascade.base import top_k

    return [ids[i] for i in top_k(scores, k) if scores[i] > 0]


def ndcg(index: BM25Index, ids: list[str], gains: dict[str, dict[str, float]], queries: list[str],
         synonyms: Synonyms) -> float:
    return float(np.mean([ndcg_at_k(top_ids(index, ids, synonyms.expand(q).text, 10), gains[q], 10)
                          for q in queries]))


def simulate_log(index: BM25Index, ids: list[str], gains: dict[str, dict[str, float]], queries: list[str],
                 sessions: int, seed: int) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    shopper = ShopperModel()
    out: list[Outcome] = []
    for q in queries:
        shown = top_ids(index, ids, q, 10)
        if not shown:
            continue
        relevance = {pid: g / 2.0 for pid, g in gains[q].items()}
        for s in range(sessions):
            actions = shopper.session(shown, list(range(len(shown))), relevance, rng)
            imp = Impression(f"{q}/{s}", 0.0, "search", tuple(shown), tuple(range(len(shown))), query=q,
                             user_id=f"{q}/{s}", total=len(shown))
            out.append(Outcome(imp, tuple(("click", pid, n, 0.0) for n, (pid, act) in
                                          enumerate(zip(shown, actions, strict=True)) if act)))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from shoprank.datasets import homedepot

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("SHOPRANK_DATA", str(Path("..") / "shared" / "datasets")))
    args = parser.parse_args(argv)
    started = time.time()
    rows = homedepot.load(Path(args.data) / homedepot.FOLDER)
    products = [parse_product(raw) for _, raw in rows.products]
    judgments = [parse_judgment(raw) for _, raw in rows.judgments]
    lowest = min(j.grade for j in judgments)
    gains: dict[str, dict[str, float]] = {}
    for j in judgments:
        gains.setdefault(j.query, {})[j.product_id] = j.grade - lowest
    split = split_by_query(judgments, TEST_SHARE, seed=SPLIT_SEED)
    train_queries = sorted({j.query for j in split.train})
    random.Random(args.seed).shuffle(train_queries)
    cut = int(len(train_queries) * 0.8)
    log_queries, valid_queries = train_queries[:cut], train_queries[cut:]

    def evaluable(qs: list[str]) -> list[str]:
        return [q for q in qs if len(gains[q]) >= 2 and len(set(gains[q].values())) > 1]

    test_queries = evaluable(sorted({j.query for j in split.test}))
    valid_queries = evaluable(valid_queries)
    index = BM25Index(make_analyzer("english")).build(products)
    ids = [p.id for p in products]
    log = simulate_log(index, ids, gains, log_queries, args.sessions, args.seed)
    off = Synonyms()
    valid = {"off": ndcg(index, ids, gains, valid_queries, off)}
    mined: dict[str, Synonyms] = {}
    for name, config in CANDIDATES.items():
        found = mine_synonyms(log, config=MiningConfig(**{**config.__dict__, "limit": 100_000}))
        try:
            mined[name] = Synonyms.from_dict({"synonyms": [s["rule"] for s in found][:2000]})
        except ValueError as exc:  # a mined set the checks refuse is not served either
            print(f"{name}: refused ({exc})")
            continue
        valid[name] = ndcg(index, ids, gains, valid_queries, mined[name])
    chosen = max((n for n in valid if n != "off"), key=lambda n: valid[n])
    test = {"off": ndcg(index, ids, gains, test_queries, off),
            chosen: ndcg(index, ids, gains, test_queries, mined[chosen])}
    touched = sum(1 for q in test_queries if mined[chosen].expand(q).added)
    print(f"Home Depot, BM25 over titles, {len(log)} simulated searches on {len(log_queries)} log queries; "
          f"{len(mined[chosen].rules)} mined rules ({chosen}, chosen on {len(valid_queries)} validation queries)")
    print(table(["configuration", "validation NDCG@10", "test NDCG@10"],
                [[n, valid[n], test.get(n, "-")] for n in valid]))
    print(f"test queries: {len(test_queries)}, {touched} of them expanded by the mined synonyms")
    payload = {"args": vars(args), "validation": valid, "test": test, "chosen": chosen,
               "rules": len(mined[chosen].rules), "test_queries": len(test_queries), "expanded_test_queries": touched,
               "example_rules": [r.to_text() for r in mined[chosen].rules[:20]],
               "seconds": round(time.time() - started, 1)}
    print(f"written to {write_json('synonyms', payload)}")
    return payload


if __name__ == "__main__":
    main()
