"""`shoprank evaluate search`: every method on held-out queries, under the two protocols.

* judged re-ranking (Amazon ESCI task 1): order each query's judged products; NDCG@10 with
  gain = grade - lowest grade; queries with < 2 judged products or one grade are skipped.
* full catalogue: search every product; NDCG@10 (unjudged gain 0, ideal from the judged set) and
  Recall@100 of products graded at least ``lowest + 0.75 * range`` (2.5 on Home Depot's 1-3 scale).

Methods: random, BM25, the untuned base encoder, a naive hybrid (reciprocal-rank fusion of the
two), the fine-tuned bi-encoder, the fine-tuned cross-encoder and the fused LambdaMART ranker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.cascade.base import top_k
from shoprank.evaluation.metrics import hit_rate_at_k, ndcg_at_k, recall_at_k
from shoprank.search.data import QuerySet
from shoprank.search.stack import SearchStack, rrf

METHODS = ("random", "bm25", "untuned", "hybrid", "dense", "cross", "fused_fast", "fused", "served")
LABELS = {
    "random": "random", "bm25": "BM25", "untuned": "untuned MiniLM", "hybrid": "naive hybrid",
    "dense": "fine-tuned dense", "cross": "fine-tuned cross-encoder", "fused_fast": "fused (no CE, online)",
    "fused": "fused ranker", "served": "served (cascade)",
}
SHIPPED = {"full catalogue": "served", "judged re-ranking": "fused"}
"""The method each protocol's verdict reads: what the shop ships for it (the HTTP API's answer for a query; the
ranker with the cross-encoder for ``run rerank``'s given lists)."""


@dataclass
class ProtocolResult:
    """Per-query values of each metric of each method: method -> metric -> [values]."""

    protocol: str
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, method: str, metric: str, value: float) -> None:
        self.values.setdefault(method, {}).setdefault(metric, []).append(float(value))

    def merge(self, other: ProtocolResult) -> None:
        for method, metrics in other.values.items():
            for metric, values in metrics.items():
                self.values.setdefault(method, {}).setdefault(metric, []).extend(values)

    def means(self) -> dict[str, dict[str, float]]:
        return {m: {k: round(float(np.mean(v)), 4) for k, v in metrics.items() if v}
                for m, metrics in self.values.items()}

    def counts(self) -> dict[str, int]:
        return {m: max(len(v) for v in metrics.values()) for m, metrics in self.values.items()}


class UntunedVectors:
    """The base encoder's product vectors, cached per catalogue in ``cache_dir``."""

    def __init__(self, stack: SearchStack, cache_dir: Path | None, progress: bool = False) -> None:
        from shoprank.encoders.biencoder import BiEncoder

        self.encoder = BiEncoder.load(None, max_length=stack.config.doc_max_length)
        self.stack = stack
        self.cache_dir = cache_dir
        self.progress = progress
        self._vectors: np.ndarray | None = None

    def all(self) -> np.ndarray:
        if self._vectors is None:
            from shoprank.search.vectors import base_vectors

            self._vectors = base_vectors(self.stack.catalog.products, self.encoder,
                                         self.stack.config.doc_max_length, self.cache_dir, self.progress)
        return self._vectors

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return self.all()[rows]


def _order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def _rrf_scores(rows: np.ndarray, *score_lists: np.ndarray) -> np.ndarray:
    fused = rrf(*[rows[_order(s)] for s in score_lists])
    return np.asarray([fused[int(r)] for r in rows], np.float32)


def judged_reranking(stack: SearchStack, qset: QuerySet, queries: Sequence[str], untuned: UntunedVectors | None,
                     progress: bool = False, seed: int = 0) -> ProtocolResult:
    """Each method orders each query's judged products."""
    from tqdm.auto import tqdm

    result = ProtocolResult("judged re-ranking")
    rng = np.random.default_rng(seed)
    qvecs = stack.encode_queries(list(queries))
    uvecs = untuned.encoder.encode_queries(list(queries)) if untuned is not None else None
    for i, q in enumerate(tqdm(queries, desc="judged re-ranking", disable=not progress)):
        gains = qset.gains[q]
        ids = [pid for pid in gains if pid in stack.catalog.row_of]
        if len(ids) < 2:
            continue
        rows = stack.catalog.rows(ids)
        best = {pid for pid in ids if gains[pid] == max(gains[p] for p in ids)}
        tokens = stack.tokens(q)
        scores: dict[str, np.ndarray] = {"bm25": stack.bm25.score(tokens)[rows]}
        if uvecs is not None:
            scores["untuned"] = untuned.rows(rows) @ uvecs[i]
            scores["hybrid"] = _rrf_scores(rows, scores["bm25"], scores["untuned"])
        served, scores["dense"], ce, model = stack.judged_scores(q, tokens, rows, qvecs[i])  # the rerank door's
        if ce is not None:
            scores["cross"] = ce
        if model is not None:
            scores["fused"] = served
        for method, s in scores.items():
            ranked = [ids[j] for j in _order(s)]
            result.add(method, "ndcg@10", ndcg_at_k(ranked, gains, 10))
            result.add(method, "first_is_best", hit_rate_at_k(ranked, best, 1))
        shuffles = [[ids[j] for j in rng.permutation(len(ids))] for _ in range(20)]
        result.add("random", "ndcg@10", float(np.mean([ndcg_at_k(r, gains, 10) for r in shuffles])))
        result.add("random", "first_is_best", float(np.mean([hit_rate_at_k(r, best, 1) for r in shuffles])))
    return result


def full_catalogue(stack: SearchStack, qset: QuerySet, queries: Sequence[str], untuned: UntunedVectors | None,
                   relevant_gain: float, top: int = 100, use_cross: bool = True, progress: bool = False,
                   served: Callable[[str, int], list[str]] | None = None) -> ProtocolResult:
    """Each method searches the whole catalogue for each query. ``served(query, top)``: the ids the shop's
    cascade answers (what the HTTP API serves), scored as the method ``served``."""
    from tqdm.auto import tqdm

    result = ProtocolResult("full catalogue")
    qvecs = stack.encode_queries(list(queries))
    uvecs = untuned.encoder.encode_queries(list(queries)) if untuned is not None else None
    uall = untuned.all() if untuned is not None else None
    alive = stack.catalog.alive
    ids = stack.catalog.ids

    def topk(scores: np.ndarray, k: int) -> np.ndarray:
        return top_k(np.where(alive[: len(scores)], scores, -np.inf), k)

    for i, q in enumerate(tqdm(queries, desc="full catalogue", disable=not progress)):
        gains = qset.gains[q]
        if max(gains.values()) <= 0:
            continue
        relevant = {pid for pid, g in gains.items() if g >= relevant_gain}
        tokens = stack.tokens(q)
        lex = stack.bm25.score(tokens)
        lex_rows = topk(lex, 200)
        lex_rows = lex_rows[lex[lex_rows] > 0]
        runs: dict[str, list[int]] = {"bm25": lex_rows[:top].tolist()}
        dense_rows = topk(stack.dense.vectors @ qvecs[i], 200)
        runs["dense"] = dense_rows[:top].tolist()
        if uall is not None:
            u_rows = topk(uall @ uvecs[i], 200)
            runs["untuned"] = u_rows[:top].tolist()
            runs["hybrid"] = [r for r, _ in sorted(rrf(lex_rows, u_rows).items(), key=lambda p: -p[1])][:top]
        if stack.cross is not None:
            first = [r for r, _ in sorted(rrf(lex_rows, dense_rows).items(), key=lambda p: -p[1])]
            head = np.asarray(first[: stack.config.rerank_top], np.int64)
            ce = stack.cross_scores(q, head)
            runs["cross"] = (head[_order(ce)].tolist() + first[stack.config.rerank_top:])[:top]
        cand = stack.candidates(tokens, qvecs[i])
        if "fast" in stack.fusion:
            order, _, _ = stack.rank(q, tokens, cand, use_cross=False)
            runs["fused_fast"] = cand.rows[order][:top].tolist()
            if use_cross and stack.cross is not None and "full" in stack.fusion:
                order, _, _ = stack.rank(q, tokens, cand, use_cross=True)
                runs["fused"] = cand.rows[order][:top].tolist()
        ranked_ids = {method: [ids[r] for r in rows] for method, rows in runs.items()}
        if served is not None:
            ranked_ids["served"] = served(q, top)
        for method, ranked in ranked_ids.items():
            result.add(method, "ndcg@10", ndcg_at_k(ranked, gains, 10))
            if relevant:
                result.add(method, "recall@100", recall_at_k(ranked, relevant, 100))
    return result


def format_table(results: Sequence[tuple[str, ProtocolResult]], metrics: Sequence[str] = ("ndcg@10", "recall@100",
                 "first_is_best")) -> str:
    """One table: a row per (set, protocol, metric), a column per method."""
    from shoprank.evaluation.tables import markdown_table

    methods = [m for m in METHODS if any(m in r.values for _, r in results)]
    rows = []
    for name, result in results:
        means = result.means()
        counts = result.counts()
        n = max(counts.values()) if counts else 0
        for metric in metrics:
            if not any(metric in means.get(m, {}) for m in methods):
                continue
            rows.append([f"{name}, {result.protocol}, {metric} (n={n})",
                         *(float(means[m][metric]) if metric in means.get(m, {}) else "—" for m in methods)])
    return markdown_table(["set / protocol / metric", *(LABELS[m] for m in methods)], rows)


def summarise(results: Sequence[tuple[str, ProtocolResult]]) -> list[dict[str, Any]]:
    return [{"set": name, "protocol": r.protocol, "queries": r.counts(), "means": r.means()} for name, r in results]


Scorer = Callable[[str, list[str]], np.ndarray]
