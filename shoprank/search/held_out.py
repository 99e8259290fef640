"""What a freshly trained search stack scores on the held-out queries, reported by ``train search``.

* ``snips``: the counterfactual click-through of the new ranking against the lists the shop served for those
  queries (:func:`shoprank.learning.estimate_clicks`), when the shop has a click log;
* ``ndcg@10``: full-catalogue NDCG@10 of the fast (online) ranking, when the held-out queries are judged.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from shoprank.evaluation.metrics import ndcg_at_k


def ranked_ids(stack: Any, queries: list[str], k: int = 100) -> dict[str, list[str]]:
    """The online (fast fusion) ranking of each query, best first."""
    out: dict[str, list[str]] = {}
    vectors = stack.encode_queries(queries) if queries else []
    for q, qvec in zip(queries, vectors, strict=True):
        tokens = stack.tokens(q)
        cand = stack.candidates(tokens, qvec)
        order, _, _ = stack.rank(q, tokens, cand, use_cross=False)
        out[q] = [stack.catalog.ids[r] for r in cand.rows[order][:k]]
    return out


def held_out_report(stack: Any, data: Any, max_queries: int = 300, seed: int = 0) -> dict[str, Any]:
    from shoprank.learning import BehaviourConfig, estimate_clicks, propensities_for

    report: dict[str, Any] = {}
    rng = random.Random(seed)
    log = data.held_out_log
    if log is not None and len(log):
        propensities = data.propensities
        if propensities is None and data.train_log is not None and len(data.train_log):
            propensities = propensities_for(data.train_log, BehaviourConfig())
        if propensities is not None:
            queries = log.queries()
            queries = sorted(rng.sample(queries, max_queries)) if len(queries) > max_queries else queries
            estimate = estimate_clicks(log.subset(queries), ranked_ids(stack, queries, 20), propensities)
            report["snips"] = {**estimate.to_dict(), "queries": len(queries), "propensities": propensities.method}
    if data.test:
        gains = data.query_set(data.test).gains
        queries = [q for q, g in gains.items() if max(g.values()) > 0]
        queries = sorted(rng.sample(queries, max_queries)) if len(queries) > max_queries else queries
        ranked = ranked_ids(stack, queries, 10)
        report["ndcg@10"] = round(float(np.mean([ndcg_at_k(ranked[q], gains[q], 10) for q in queries])), 4)
        report["ndcg_queries"] = len(queries)
    return report
