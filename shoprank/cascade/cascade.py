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

import numpy as np

from shoprank.cascade.base import Page, Request, clean_query
from shoprank.cascade.sorting import sort_items
from shoprank.data.records import Product

OVER_FETCH = 3
"""Candidates ranked per place shown when the shop re-ranks: diversity and rules choose from them."""
DEPTH = 300
"""Results ranked and re-ranked for every request, whatever its page (more only when a request reaches past
``DEPTH / OVER_FETCH``): the same request gives the same list on every door, so a batch run's ``--top 100``
and the HTTP API's first page are cut from one list."""
MATCH_LIMIT = 10_000
"""Products of a query's matching set the search engine lists per request (the ranked head, then the rest of
the set): ``total``, facets, pins, sorts and pages are over it, so they never depend on the page or on
``facets``. A set past it still counts whole in ``total``."""

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
    match_limit: int = MATCH_LIMIT

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
        """The query's matching set (the engine's list: ranked head, then the rest of the set), re-ranked within
        itself (rules, diversity, exploration: nothing is added, so no product outside the set is promoted),
        optionally sorted, then the page cut from it. Nothing matches: no items, total 0, and the spelling
        index's correction as ``corrected_query`` ("did you mean")."""
        engine = _engine(self.search, "search")
        text, cut = clean_query(request.query)
        reranker = self._reranker(request)
        wanted = request.end
        sorting = request.sort != "relevance"
        fetch = max(self.match_limit, wanted)
        category = request.filters.category if request.filters else None
        only_filters = reranker is None or reranker.only_filters(text, category)
        if not sorting and only_filters and hasattr(engine, "search_set"):
            return self._search_set(engine, request, text, cut, reranker)
        explain = None if reranker is not None or sorting else wanted  # the ranked head at most (engine's rule)
        items, total = engine.search(text, k=fetch, offset=0, filters=request.filters, user_id=request.user_id,
                                     explain=explain)
        products: dict[str, Product] = {}
        if reranker is not None and items:
            fetched = len(items)
            products, vectors = self._context(engine, [item.id for item in items])
            items = reranker.rerank(items, products, vectors, text, filters=request.filters,
                                    rng=request.seed if request.seed is not None else 0)
            total = max(0, total - (fetched - len(items)))  # hidden by a rule
        if sorting and items:  # the matching set (rules applied) in the shopper's order, stable, then the page
            products = products or self._context(engine, [item.id for item in items])[0]
            items = sort_items(items, request.sort, lambda it: _fact(products, it.id, "price"),
                               lambda it: _fact(products, it.id, "created_at"))
        page = Page(request, items[request.offset : wanted], int(total), getattr(engine, "version", None), text, cut,
                    [item.id for item in items] if request.facets else [], corrected_query=engine.correction(text))
        if page.total == 0 and text:
            self._no_match(engine, request, page, reranker)
        return page

    def _search_set(self, engine: Any, request: Request, text: str, cut: bool, reranker: Any) -> Page:
        """:meth:`_search` when re-ranking can only drop items (or there is none): the same answer, with result
        objects made only for the page. Re-ranking that only drops items is ``rules.filter`` of the list
        (:meth:`Reranker.only_filters`), so the whole set is filtered product by product (``RuleSet.shown``)
        and score parts and reasons are made for the page alone (the set's ``explainer``)."""
        wanted = request.end
        ranked = engine.search_set(text, filters=request.filters, user_id=request.user_id, lazy=True,
                                   limit=max(self.match_limit, wanted))
        total = ranked.total
        if reranker is not None and len(ranked):
            listed = len(ranked)
            category = request.filters.category if request.filters else None
            rules = reranker.rules
            asked = {"query": text, "category": category, "filters": request.filters}
            head_kept = rules.shown_mask(ranked.head_ids(), ranked.head_products,
                                         in_stock=ranked.head_stock, **asked)
            tail_kept = rules.shown_mask(ranked.tail_ids, ranked.tail_products, in_stock=ranked.tail_stock, **asked)
            ranked.head_keep = None if head_kept.all() else np.flatnonzero(head_kept)
            ranked.tail_keep = None if tail_kept.all() else np.flatnonzero(tail_kept)
            total = max(0, total - (listed - len(ranked)))  # hidden by a rule
        page = Page(request, ranked.items(request.offset, wanted), int(total), getattr(engine, "version", None),
                    text, cut, ranked.ids() if request.facets else [], corrected_query=engine.correction(text))
        if page.total == 0 and text:
            self._no_match(engine, request, page, reranker)
        return page

    def _no_match(self, engine: Any, request: Request, page: Page, reranker: Any) -> None:
        """An empty answer: "did you mean" (a corrected query with results), and the closest products when the
        shop's search settings ask for them (the rules still apply: a hidden product is not shown)."""
        from shoprank.search.settings import load_search_settings

        suggest = getattr(engine, "suggestion", None)
        page.did_you_mean = suggest(page.query) if suggest is not None else None
        wanted = load_search_settings(self.store).closest_on_empty
        closest = getattr(engine, "closest", None)
        if wanted <= 0 or closest is None:
            return
        near = closest(page.query, wanted, request.filters)
        if reranker is not None and near:
            products, _ = self._context(engine, [item.id for item in near])
            near = reranker.rules.filter(near, products, query=page.query,
                                         category=request.filters.category if request.filters else None,
                                         filters=request.filters)
        page.closest = near

    def _recommend(self, request: Request) -> Page:
        engine = _engine(self.recommend, "recommend")
        reranker = self._reranker(request)
        wanted = request.end
        fetch = max(self.depth, wanted * OVER_FETCH)
        explain = None
        if request.surface == "recommend":
            history = list(request.history) if request.history is not None else None
            asked = {"k": fetch, "history": history, "exclude": set(request.exclude) or None,
                     "slot_at": request.per_page}
            if hasattr(engine, "recommend_lazily"):  # parts and reasons made for the page alone, after re-ranking
                got = engine.recommend_lazily(request.user_id or "", **asked)
                items, explain = got.items, got.explain
            else:
                items = engine.recommend(request.user_id or "", **asked)
        else:
            method = engine.similar if request.surface == "similar" else engine.bought_together
            items = [item for item in method(request.item_id, fetch + len(request.exclude))
                     if item.id not in request.exclude][:fetch]
        if reranker is not None:
            products, vectors = self._context(engine, [item.id for item in items])
            items = reranker.rerank(items, products, vectors, None, rng=request.seed if request.seed is not None else 0)
        page = items[request.offset : wanted]
        return Page(request, explain(page) if explain is not None else page, len(items),
                    getattr(engine, "version", None))

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

