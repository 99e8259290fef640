"""The re-ranking stage of the batch commands (``run search|rerank|recommend --diversity L``).

Each query's or user's ranked list is over-fetched (:data:`OVER_FETCH` × ``--top``), re-ranked with the
shop's rules and settings (λ from ``--diversity`` when given; exploration always off, so runs repeat),
and cut to ``--top``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoprank.data.records import Product
    from shoprank.rerank import Reranker
    from shoprank.rerank.pipeline import Vectors

OVER_FETCH = 3  # candidates fetched per place kept, so MMR has something to choose from


def add_diversity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--diversity", type=float, default=None, metavar="L",
                        help="re-ranking diversity λ in [0, 1]: 0 turns it off; without it the shop's setting "
                             "applies ('shoprank rules set-diversity'). Rules always apply; exploration never")


def batch_reranker(shop: Any, diversity: float | None) -> Reranker:
    """The shop's re-ranker for a batch run: ``diversity`` overrides λ, exploration is off."""
    from shoprank.rerank import Reranker

    if diversity is not None and not 0.0 <= diversity <= 1.0:
        raise ValueError(f"--diversity must lie between 0 (off) and 1, got {diversity}")
    with shop.store(create=False) as store:
        reranker = Reranker.from_store(store, diversity=diversity)
    reranker.config = reranker.config.for_evaluation()
    return reranker


def rerank_pairs(
    reranker: Reranker,
    ranked: Sequence[tuple[str, float]],
    products: Mapping[str, Product],
    vectors: Vectors | None,
    query: str | None,
    top: int | None,
) -> list[tuple[str, float]]:
    """Re-rank ``(id, score)`` pairs (best first) and keep ``top`` (all when None).

    The scores written are the re-ranked ones, clipped so they never rise down the list: a TREC run
    is read in score order, and this keeps the re-ranked order (equal scores keep their place).
    """
    from shoprank.results import ScoredItem

    items = [ScoredItem(pid, float(score)) for pid, score in ranked]
    out = reranker.rerank(items, products, vectors, query, rng=0)
    out = out if top is None else out[:top]
    pairs: list[tuple[str, float]] = []
    ceiling = float("inf")
    for item in out:
        ceiling = min(ceiling, float(item.score))
        pairs.append((item.id, ceiling))
    return pairs


def describe(reranker: Reranker) -> str:
    """One line for the command's header: λ and the number of rules."""
    lam = reranker.config.diversity
    state = f"diversity λ={lam:g}" if lam > 0 else "diversity off"
    return f"re-ranking: {state}, {len(reranker.rules.rules)} rules, exploration off"


def search_context(stack: Any, ids: Sequence[str]) -> tuple[dict[str, Product], Vectors]:
    """Products and text vectors of ``ids`` from a search stack (unknown ids: no product, a zero vector)."""
    import numpy as np

    rows = stack.catalog.rows(list(ids))
    products = {pid: stack.catalog.products[r] for pid, r in zip(ids, rows.tolist(), strict=True)
                if r >= 0 and stack.catalog.products[r] is not None}
    dense = stack.dense.vectors

    def vectors(wanted: Sequence[str]) -> np.ndarray:
        r = stack.catalog.rows(list(wanted))
        out = np.zeros((len(r), dense.shape[1]), dtype=np.float64)
        known = r >= 0
        out[known] = dense[r[known]]
        return out

    return products, vectors


def recommend_context(rec: Any, ids: Sequence[str],
                      cache: dict[str, Product | None]) -> tuple[dict[str, Product], Vectors]:
    """Products (from the recommender's store, memoised in ``cache``) and text vectors of ``ids``."""
    import numpy as np

    for pid in ids:
        if pid not in cache:
            cache[pid] = rec.store.get_product(pid) if rec.store is not None else None
    products = {pid: cache[pid] for pid in ids if cache[pid] is not None}
    text = rec.art.text_vectors

    def vectors(wanted: Sequence[str]) -> np.ndarray:
        rows = [rec.catalogue.index.get(pid, 0) for pid in wanted]  # row 0 (padding) for unknown ids
        out = np.asarray(text[rows], dtype=np.float64)
        out[[n for n, r in enumerate(rows) if r == 0]] = 0.0
        return out

    return products, vectors
