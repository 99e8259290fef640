"""One cascade for every surface: candidates and ranking (the shop's engines), then the re-ranking stage.

``Cascade.run(requests)`` is what the HTTP API, the batch commands (``shoprank run ...``), the CLI queries and
evaluation call, so what is measured is what is served. Search asks the search engine (BM25 and dense ANN
candidates, features, LambdaMART); "for you", "similar" and "bought together" ask the recommender. Every
surface then goes through the shop's :class:`~shoprank.rerank.shop.ShopReranking` (rules, diversity,
exploration; "similar" and "bought together": rules only), over a list deep enough that hidden items and
variety still leave a full page, and the page is cut from the re-ranked list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoprank.cascade.base import Page, Request, clean_query
from shoprank.cascade.sorting import SORT_DEPTH, sort_items
from shoprank.data.records import Product

OVER_FETCH = 3
"""Candidates ranked per place shown when the shop re-ranks: diversity and rules choose from them."""
DEPTH = 300
"""Results ranked and re-ranked for every request, whatever its page (more only when a request reaches past
``DEPTH / OVER_FETCH``): the same request gives the same list on every door, so a batch run's ``--top 100``
and the HTTP API's first page are cut from one list."""


@dataclass
class Cascade:
    """A shop's cascade. ``search`` / ``recommend``: the engines (None where the shop has no such model);
    ``reranking``: the shop's :class:`~shoprank.rerank.shop.ShopReranking` (None: no re-ranking stage);
    ``store``: where products the engines do not hold are read from (re-ranking needs them)."""

    search: Any = None
    recommend: Any = None
    reranking: Any = None
    store: Any = None
    depth: int = DEPTH

    def run(self, requests: Sequence[Request]) -> list[Page]:
        """One page per request, in order. Raises KeyError for an item the models do not know, LookupError
        (:class:`MissingModel`) when the surface's engine is absent, ValueError for a request that cannot be met."""
        return [self.run_one(request) for request in requests]

    def run_one(self, request: Request) -> Page:
        if request.surface == "search":
            return self._search(request)
        return self._recommend(request)

    # stages -----------------------------------------------------------------------------------
    def _reranker(self, request: Request) -> Any:
        if self.reranking is None:
            return None
        # variety would work against "similar", and against an order the shopper chose
        rules_only = request.surface in ("similar", "bought_together") or request.sort != "relevance"
        return self.reranking.for_request(request.diversity, page_size=request.per_page, rules_only=rules_only,
                                          explore=request.explore)

    def _search(self, request: Request) -> Page:
        engine = _engine(self.search, "search")
        text, cut = clean_query(request.query)
        reranker = self._reranker(request)
        wanted = request.end
        sorting = request.sort != "relevance"
        depth = max(self.depth, wanted * OVER_FETCH, SORT_DEPTH if sorting else 0)
        items, total = engine.search(text, k=depth, offset=0, filters=request.filters, user_id=request.user_id,
                                     explain=None if reranker is not None or sorting else wanted)
        products: dict[str, Product] = {}
        if reranker is not None:
            fetched = len(items)
            products, vectors = self._context(engine, [item.id for item in items])
            items = reranker.rerank(items, products, vectors, text, filters=request.filters,
                                    rng=request.seed if request.seed is not None else 0)
            total = max(0, total - (fetched - len(items)))  # hidden by a rule
        if sorting:  # the matching set (rules applied) in the shopper's order, stable, before the page is cut
            products = products or self._context(engine, [item.id for item in items])[0]
            items = sort_items(items, request.sort, lambda it: _fact(products, it.id, "price"),
                               lambda it: _fact(products, it.id, "created_at"))
        return Page(request, items[request.offset : wanted], int(total), getattr(engine, "version", None), text, cut,
                    [item.id for item in items] if request.facets else [], corrected_query=engine.correction(text))

    def _recommend(self, request: Request) -> Page:
        engine = _engine(self.recommend, "recommend")
        reranker = self._reranker(request)
        wanted = request.end
        fetch = max(self.depth, wanted * OVER_FETCH)
        if request.surface == "recommend":
            history = list(request.history) if request.history is not None else None
            items = engine.recommend(request.user_id or "", k=fetch, history=history,
                                     exclude=set(request.exclude) or None, slot_at=request.per_page)
        else:
            method = engine.similar if request.surface == "similar" else engine.bought_together
            items = [item for item in method(request.item_id, fetch + len(request.exclude))
                     if item.id not in request.exclude][:fetch]
        if reranker is not None:
            products, vectors = self._context(engine, [item.id for item in items])
            items = reranker.rerank(items, products, vectors, None, rng=request.seed if request.seed is not None else 0)
        return Page(request, items[request.offset : wanted], len(items), getattr(engine, "version", None))

    def _context(self, engine: Any, ids: list[str]) -> tuple[dict[str, Product], Any]:
        """The candidates' products and text vectors, as the engine holds them (``engine.context``); products the
        engine does not hold are read from the store."""
        products, vectors = engine.context(ids)
        missing = [pid for pid in ids if pid not in products]
        if missing and self.store is not None:
            products = {**products, **{p.id: p for p in self.store.get_products(missing) if p is not None}}
        return products, vectors


def _fact(products: dict[str, Product], product_id: str, name: str) -> float | None:
    product = products.get(product_id)
    return None if product is None else getattr(product, name)


class MissingModel(LookupError):
    """The cascade was asked for a surface whose engine the shop does not have."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"no {kind} model")
        self.kind = kind


def _engine(engine: Any, kind: str) -> Any:
    if engine is None:
        raise MissingModel(kind)
    return engine


def pairs(page: Page) -> list[tuple[str, float]]:
    """A page as (id, score) pairs for a TREC run: scores clipped so they never rise down the list (a run is
    read in score order, and this keeps the cascade's order; equal scores keep their place)."""
    out: list[tuple[str, float]] = []
    ceiling = float("inf")
    for item in page.items:
        ceiling = min(ceiling, float(item.score))
        out.append((item.id, ceiling))
    return out

