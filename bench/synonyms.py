"""Synonyms on Home Depot: full-catalogue NDCG@10 of BM25 with and without them, on held-out queries, and the
weight an added synonym's terms count with.

    python -m bench.synonyms [--sessions 20] [--seed 0]

The shop's usual split (``shoprank.search.data``: 20% of queries held out, seed 0) keeps the test queries out
of everything; the training queries are split again into log queries (80%) and validation queries (20%).
A click log is simulated on the log queries only: each is searched ``--sessions`` times, BM25 (the shop's
lexical index) shows the top 10, and a simulated shopper (``shoprank.learning.simulate``) clicks with
relevance = (grade - 1) / 2 from the judgments. Synonyms are mined from that log
(``shoprank.synonyms.mine_synonyms``: shared clicks; the simulation has no sessions, so no reformulations).
A second rule set, ``bench/synonyms_homedepot.txt``, is what a merchandiser would write (common trade
vocabulary, written without looking at the queries).

On the validation queries the bench sweeps the expansion weight ``w`` (:data:`WEIGHTS`) for each rule set (and
the mining thresholds, :data:`CANDIDATES`, jointly with it). The weight shipped as
``shoprank.synonyms.DEFAULT_WEIGHT`` is chosen on the mined rules when they expand at least
:data:`MIN_EXPANDED` validation queries, else on the merchandiser's. The test queries are then read once per
rule set, with the chosen configuration and with synonyms off. The ranking is BM25 alone (not the fused ranker)
so the effect is the synonyms' own; a query is expanded as served: the typed tokens weigh 1, the tokens the
synonyms add ``w`` (``BM25Index.expand`` / ``BM25Index.score``).
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
from shoprank.synonyms import DEFAULT_WEIGHT, ExpansionConfig, MiningConfig, Synonyms, mine_synonyms
from shoprank.text import make_analyzer

CANDIDATES = {"overlap 0.3": MiningConfig(min_overlap=0.3), "overlap 0.5": MiningConfig(min_overlap=0.5),
              "overlap 0.7": MiningConfig(min_overlap=0.7), "overlap 0.5, 3 shared": MiningConfig(min_shared=3)}
WEIGHTS = (0.25, 0.5, 0.75, 1.0)
MIN_EXPANDED = 30
"""Validation queries a rule set must expand for its sweep to choose the shipped weight."""
MERCHANDISER = Path(__file__).with_name("synonyms_homedepot.txt")


def top_ids(index: BM25Index, ids: list[str], tokens: list[str], k: int,
            weights: list[float] | None = None) -> list[str]:
    scores = index.score(tokens, weights)
    if not np.any(scores > 0):
        return []
    from shoprank.cascade.base import top_k

    return [ids[i] for i in top_k(scores, k) if scores[i] > 0]


def ndcgs(index: BM25Index, ids: list[str], gains: dict[str, dict[str, float]], queries: list[str],
          synonyms: Synonyms) -> np.ndarray:
    """NDCG@10 per query, each expanded by ``synonyms`` as the engine does it (added tokens weigh its weight)."""
    out = []
    for q in queries:
        tokens, weights = index.expand(index.analyzer(q), synonyms.expand(q).weighted())
        out.append(ndcg_at_k(top_ids(index, ids, tokens, 10, weights), gains[q], 10))
    return np.asarray(out, np.float64)


def weighted(synonyms: Synonyms, w: float) -> Synonyms:
    return Synonyms(synonyms.rules, ExpansionConfig(w))


def sweep(index: BM25Index, ids: list[str], gains: dict[str, dict[str, float]], queries: list[str],
          rule_sets: dict[str, Synonyms]) -> dict[tuple[str, float], dict[str, Any]]:
    """(rule set, w) -> validation NDCG@10 over all ``queries`` and over those the set expands."""
    out = {}
    off = ndcgs(index, ids, gains, queries, Synonyms())
    for name, synonyms in rule_sets.items():
        touched = np.asarray([bool(synonyms.expand(q).added) for q in queries])
        for w in WEIGHTS:
            per_query = ndcgs(index, ids, gains, queries, weighted(synonyms, w))
            out[(name, w)] = {"ndcg": float(per_query.mean()), "expanded": int(touched.sum()),
                              "ndcg_expanded": float(per_query[touched].mean()) if touched.any() else None,
                              "ndcg_expanded_off": float(off[touched].mean()) if touched.any() else None}
    return out


def best(results: dict[tuple[str, float], dict[str, Any]], names: list[str]) -> tuple[str, float]:
    """The (rule set, w) of ``names`` with the highest validation NDCG@10; ties go to the larger w (the smaller
    change), then the first name."""
    keys = [k for k in results if k[0] in names]
    return max(keys, key=lambda k: (round(results[k]["ndcg"], 6), k[1], -names.index(k[0])))


def simulate_log(index: BM25Index, ids: list[str], gains: dict[str, dict[str, float]], queries: list[str],
                 sessions: int, seed: int) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    shopper = ShopperModel()
    out: list[Outcome] = []
    for q in queries:
        shown = top_ids(index, ids, index.analyzer(q), 10)
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
    mined: dict[str, Synonyms] = {}
    for name, config in CANDIDATES.items():
        found = mine_synonyms(log, config=MiningConfig(**{**config.__dict__, "limit": 100_000}))
        try:
            mined[f"mined, {name}"] = Synonyms.from_dict({"synonyms": [s["rule"] for s in found][:2000]})
        except ValueError as exc:  # a mined set the checks refuse is not served either
            print(f"{name}: refused ({exc})")
    lines = [line.strip() for line in MERCHANDISER.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    merchandiser = {"merchandiser": Synonyms.from_dict({"synonyms": lines})}
    valid_off = float(ndcgs(index, ids, gains, valid_queries, off).mean())
    results = sweep(index, ids, gains, valid_queries, {**mined, **merchandiser})
    chosen = {"mined": best(results, list(mined)), "merchandiser": best(results, ["merchandiser"])}
    mined_expanded = results[chosen["mined"]]["expanded"]
    decides = "mined" if mined_expanded >= MIN_EXPANDED else "merchandiser"
    shipped = chosen[decides][1]
    print(f"Home Depot, BM25, {len(log)} simulated searches on {len(log_queries)} log queries; "
          f"{len(valid_queries)} validation queries, {len(test_queries)} test queries")
    rows = [["off", "-", 0, valid_off, "-", "-"]]
    rows += [[name, w, r["expanded"], r["ndcg"], "-" if r["ndcg_expanded"] is None else r["ndcg_expanded"],
              "-" if r["ndcg_expanded_off"] is None else r["ndcg_expanded_off"]] for (name, w), r in results.items()]
    print(table(["rule set", "w", "validation queries expanded", "validation NDCG@10",
                 "validation NDCG@10 (expanded only)", "same queries, off"], rows))
    print(f"weight chosen on the {decides} rules ({chosen[decides][0]}: w={shipped}); mined rules expand "
          f"{mined_expanded} validation queries (at least {MIN_EXPANDED} decide)")
    if shipped != DEFAULT_WEIGHT:
        print(f"NOTE: shoprank.synonyms.DEFAULT_WEIGHT is {DEFAULT_WEIGHT}, validation chose {shipped}")
    test_off = ndcgs(index, ids, gains, test_queries, off)
    test: dict[str, Any] = {"off": float(test_off.mean())}
    test_rows = [["off", "-", 0, test["off"], "-", "-"]]
    for name, _ in chosen.values():  # each set read once, with the shipped weight
        synonyms = weighted({**mined, **merchandiser}[name], shipped)
        per_query = ndcgs(index, ids, gains, test_queries, synonyms)
        touched = np.asarray([bool(synonyms.expand(q).added) for q in test_queries])
        test[name] = {"weight": shipped, "rules": len(synonyms.rules), "ndcg": float(per_query.mean()),
                      "expanded": int(touched.sum()),
                      "ndcg_expanded": float(per_query[touched].mean()) if touched.any() else None,
                      "ndcg_expanded_off": float(test_off[touched].mean()) if touched.any() else None}
        t = test[name]
        test_rows.append([f"{name} ({t['rules']} rules)", shipped, t["expanded"], t["ndcg"],
                          "-" if t["ndcg_expanded"] is None else t["ndcg_expanded"],
                          "-" if t["ndcg_expanded_off"] is None else t["ndcg_expanded_off"]])
    print(table(["rule set", "w", "test queries expanded", "test NDCG@10", "test NDCG@10 (expanded only)",
                 "same queries, off"], test_rows))
    payload = {"args": vars(args), "validation_off": valid_off,
               "validation": [{"rules": name, "weight": w, **r} for (name, w), r in results.items()],
               "chosen": {k: {"rules": v[0], "weight": v[1]} for k, v in chosen.items()}, "decided_by": decides,
               "shipped_weight": shipped, "default_weight": DEFAULT_WEIGHT, "test": test,
               "test_queries": len(test_queries), "validation_queries": len(valid_queries),
               "example_rules": [r.to_text() for r in mined[chosen["mined"][0]].rules[:20]],
               "seconds": round(time.time() - started, 1)}
    print(f"written to {write_json('synonyms', payload)}")
    return payload

if __name__ == "__main__":
    main()
