"""The batch commands' cascade (``run search|recommend``) and the re-ranking of given lists (``run rerank``).

``run search`` and ``run recommend`` ask the shop's cascade exactly as the HTTP API does (same engines, same
re-ranking, same list depth), with λ from ``--diversity`` when given and exploration off so runs repeat.
``run rerank`` orders lists it is given, then re-ranks them with the shop's rules and settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoprank.data.records import Product
    from shoprank.rerank import Reranker
    from shoprank.rerank.pipeline import Vectors



def add_diversity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--diversity", type=float, default=None, metavar="L",
                        help="re-ranking diversity λ in [0, 1]: 0 turns it off; without it the shop's setting "
                             "applies ('shoprank rules set-diversity'). Rules always apply; exploration never")


def batch_cascade(shop: Any, surfaces: tuple[str, ...], *, use_cross_encoder: bool = False) -> Any:
    """The shop's cascade as the server loads it (:func:`shoprank.cascade.load.load_cascade`); a missing bundle
    is a command error."""
    from shoprank.bundles import BundleError
    from shoprank.cascade.load import load_cascade
    from shoprank.cli.main import CommandError

    try:
        return load_cascade(shop, surfaces, use_cross_encoder=use_cross_encoder)
    except BundleError as exc:
        raise CommandError(str(exc)) from None


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
    from shoprank.cascade import Page, Request, pairs
    from shoprank.results import ScoredItem

    items = [ScoredItem(pid, float(score)) for pid, score in ranked]
    out = reranker.rerank(items, products, vectors, query, rng=0)
    out = out if top is None else out[:top]
    return pairs(Page(Request("search", query or ""), out, len(out), None))


def describe(reranker: Reranker, diversity: float | None = None) -> str:
    """One line for the command's header: λ (``diversity`` when it overrides the shop's) and the number of rules."""
    lam = reranker.config.diversity if diversity is None else diversity
    state = f"diversity λ={lam:g}" if lam > 0 else "diversity off"
    return f"re-ranking: {state}, {len(reranker.rules.rules)} rules, exploration off"

