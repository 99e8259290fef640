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

