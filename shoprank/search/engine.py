"""The online search engine: the shop's latest "search" bundle plus its store.

``SearchEngine.load(shop)`` opens the bundle, attaches the products from the store and applies
every catalogue change made since the bundle was trained, so it serves the live catalogue.
A search encodes the query, takes BM25 and ANN candidates, and orders a few hundred of them
with the LambdaMART model; the cross-encoder joins only when ``use_cross_encoder`` is on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.bundles import BundleError, open_bundle
from shoprank.data.records import Product
from shoprank.results import ScoredItem, SearchFilters
from shoprank.search.locking import ReadWriteLock
from shoprank.search.query_cache import QueryCache
from shoprank.search.ranked import CatalogRows, HeadItems, RankedSet
from shoprank.search.stack import SearchStack

KIND = "search"
_PARTS = ("bm25", "dense", "ce")
PERSONAL_WEIGHT = 0.15
"""With ``user_id``: a product in the category of all the user's recent events gains this share of the
candidates' score spread (a category with a third of them, a third of it). Enough to reorder close
results, not to bury a better match."""
PERSONAL_HISTORY = 50  # recent events read per search
QUERY_CACHE = 4096  # query embeddings an engine keeps (least recently used dropped first)


def leaf_category(product: Product | None) -> str:
    path = product.category_path if product is not None else []
    return path[-1] if path else ""


def surface_forms(query: str, max_window: int = 3) -> dict[str, str]:
    """Each normalised query word -> the words the shopper typed for it (``0.5in`` -> ``1/2 in.``).

    The shortest run of the query's space-separated chunks whose normalised words include it."""
    from shoprank.text import words

    chunks = query.split()
    out: dict[str, str] = {}
    for size in range(1, max_window + 1):
        for start in range(len(chunks) - size + 1):
            phrase = " ".join(chunks[start : start + size])
            for word in words(phrase):
                out.setdefault(word, phrase)
    return out


def reasons_for(query_words: list[str], title_words: set[str], parts: dict[str, float],
                surface: dict[str, str] | None = None) -> list[str]:
    """A few human words on why a product is in the results (query words as the shopper typed them)."""
    matched = [w for w in dict.fromkeys(query_words) if w in title_words]
    out = []
    if matched:
        shown = list(dict.fromkeys((surface or {}).get(w, w) for w in matched))
        out.append("matches " + " and ".join(f"'{w}'" for w in shown[:3]))
    if parts.get("dense", 0.0) >= 0.5:
        out.append("close in meaning to the query")
    if parts.get("ce", float("-inf")) > 0:
        out.append("judged relevant by the cross-encoder")
    return out or ["related to the query"]


class SearchEngine:
    """Search over one shop's catalogue with its latest trained models."""

    def __init__(self, stack: SearchStack, version: str, catalog_version: int = 0, shop: Any = None,
                 use_cross_encoder: bool = False, query_cache: int = QUERY_CACHE) -> None:
        self.stack = stack
        self.version = version
        self.catalog_version = catalog_version
        self.shop = shop
        self.use_cross_encoder = use_cross_encoder
        self._lock = ReadWriteLock()
        """Searches share it (read); catalogue changes, which rebuild index arrays, have it alone (write)."""
        self._store: Any = None
        self._store_lock = threading.Lock()
        lazy = not getattr(stack.encoder, "loaded", True)  # a LazyEncoder not loaded yet: do not load it for this
        tokenizer = None if lazy else getattr(getattr(getattr(stack.encoder, "query", stack.encoder), "model", None),
                                              "tokenizer", None)
        self.query_cache = QueryCache(query_cache, fold_case=bool(getattr(tokenizer, "do_lower_case", False)))
        """Query embeddings by normalised query text; belongs to this engine, so a new bundle starts empty."""
        self.query_backend = "pytorch"

    @classmethod
    def load(cls, shop: Any, version: str | None = None, use_cross_encoder: bool = False, *,
             onnx_queries: bool = False, query_cache: int = QUERY_CACHE, warm: bool = True) -> SearchEngine:
        """The latest (or the given) search bundle of ``shop``; raises BundleError if there is none.

        ``onnx_queries`` (what the server asks for): embed queries with the bundle's int8 ONNX query tower, or
        one exported once into the shop's ``cache/`` (PyTorch when neither can be had); off, the PyTorch tower
        that training and evaluation use. ``warm``: compute per-product ranking facts, the stock and facet
        arrays and the spelling index now rather than on the first queries."""
        bundle = open_bundle(shop.models_path, KIND, version)
        if not (bundle.path / "stack.json").is_file():
            raise BundleError(f"bundle {bundle.path} is not a search stack")
        params = bundle.params
        with shop.store(create=False) as store:
            products = list(store.iter_products())
            stack = SearchStack.load(bundle.path, products, load_cross=use_cross_encoder, lazy_encoder=onnx_queries)
            engine = cls(stack, bundle.version, int(params.get("catalog_version", 0)), shop, use_cross_encoder,
                         query_cache)
            changed, deleted, current = store.products_changed_since(engine.catalog_version)
        known = {p.id for p in products}
        missing = [pid for pid in stack.catalog.row_of if pid not in known and pid not in deleted]
        engine.delete_products(list(deleted) + missing)
        engine.upsert_products(changed)
        engine.catalog_version = current
        if onnx_queries:
            engine.query_backend = stack.use_onnx_query_tower(bundle.path, Path(shop.path) / "cache")
            tower_tokenizer = getattr(stack.query_tower, "tokenizer", None)
            if tower_tokenizer is not None:
                engine.query_cache.fold_case = bool(getattr(tower_tokenizer, "do_lower_case", False))
        if warm:
            stack.titles.warm(stack.catalog.products, stack.stats)
            stack.catalog.in_stock()
            stack.catalog.facet_codes()
            if stack.spell is not None:
                stack.spell.warm()
        return engine

    # catalogue changes ----------------------------------------------------------------------------
    def upsert_products(self, products: Sequence[Product]) -> None:
        """Index new or changed products; they are searchable when this returns."""
        products = list(products)
        if not products:
            return
        with self._lock.write():
            self.stack.upsert(products)

    def delete_products(self, ids: Sequence[str]) -> int:
        with self._lock.write():
            return self.stack.delete(list(ids))

    def embed_query(self, query: str) -> np.ndarray:
        """The query's embedding, from the cache when this query was seen lately."""
        vector = self.query_cache.get(query)
        if vector is None:
            vector = self.stack.embed_query(query)
            self.query_cache.put(query, vector)
        return vector

    # personalisation -------------------------------------------------------------------------------
    def affinity(self, user_id: str) -> dict[str, float]:
        """Leaf category -> its share of the user's recent events, weighted by type (purchase > view)."""
        if self.shop is None:
            return {}
        from shoprank.data.limits import EVENT_WEIGHTS

        with self._store_lock:
            if self._store is None:
                self._store = self.shop.store(create=False)
        weights: dict[str, float] = {}
        catalog = self.stack.catalog
        for event in self._store.user_events(user_id, limit=PERSONAL_HISTORY):
            row = catalog.row_of.get(event.item_id)
            category = leaf_category(catalog.products[row]) if row is not None else ""
            if category:
                weights[category] = weights.get(category, 0.0) + EVENT_WEIGHTS.get(event.type, 0.25)
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()} if total > 0 else {}

    # search ----------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, offset: int = 0, filters: SearchFilters | None = None,
               user_id: str | None = None, explain: int | None = None, expansion: Sequence[tuple[str, float]] = ()
               ) -> tuple[list[ScoredItem], int]:
        """A page of the query's results (``k`` from ``offset``) and how many products match it.

        The matching set is :func:`shoprank.search.matching.result_set`: lexical matches and products at or
        above the dense threshold, within ``filters``. The ranker orders its pool (the BM25 top ``lexical_k``
        and dense top ``dense_k`` it was trained on) and the set's members among them come first; the rest of
        the set follows them (BM25 order, then cosine), scored below every ranked one. Whatever ``k``, the list
        is the same: asking for more never reorders the first ones. A query nothing matches answers ``([], 0)``.

        ``user_id`` personalises: products in the categories of the user's recent events gain up to
        :data:`PERSONAL_WEIGHT` of the score spread (score part ``personal``, reason "you like ...").
        ``explain``: only the first ``explain`` items carry score parts and reasons; the rest have the id and
        score alone (a caller that wants a long list only for its ids, e.g. facet counts, skips their cost).
        ``expansion``: ``(phrase, weight)`` terms added to the query (the shop's synonyms): the dense tower, the
        ranker and the reasons see the query with them appended; in BM25 (matching, candidates, lexical
        features) each added token counts ``weight`` times its score, the typed ones 1.
        """
        if k < 0 or offset < 0:
            raise ValueError("k and offset must not be negative")
        explained = k if explain is None else max(0, min(explain, k))
        ranked = self.search_set(query, filters, user_id, explain=(offset, offset + explained), expansion=expansion)
        return ranked.items(offset, offset + k), ranked.total

    def search_set(self, query: str, filters: SearchFilters | None = None, user_id: str | None = None,
                   explain: tuple[int, int] | None = None, limit: int | None = None,
                   expansion: Sequence[tuple[str, float]] = (), lazy: bool = False) -> RankedSet:
        """The query's whole matching set, ranked (what :meth:`search` pages through): the ranked head as
        results, the rest of the set as ids and products (:class:`~shoprank.search.ranked.RankedSet`).
        ``explain``: the places of the head (start, stop) that carry score parts and reasons (None: all);
        ``lazy``: none do yet, and the set's ``explainer`` makes them for the places shown (``explain`` is then
        ignored); ``limit``: products listed (default :data:`~shoprank.search.matching.MATCH_LIMIT`; ``total``
        counts every match); ``expansion``: as :meth:`search`."""
        from shoprank.search.matching import MATCH_LIMIT, result_set

        query = query.strip()
        if not query:
            return RankedSet.empty()
        stack = self.stack
        typed, query = query, " ".join([query, *(term for term, _ in expansion)])
        qvec = self.embed_query(query)  # outside the lock: the query tower does not change with the catalogue
        with self._lock.read():
            tokens, weights = stack.bm25.expand(stack.tokens(typed), expansion) if expansion else \
                (stack.tokens(typed), None)
            keep = None
            if filters is not None and not filters.is_empty():
                products = stack.catalog.products

                def keep(rows: np.ndarray) -> np.ndarray:
                    return np.asarray([products[r] is not None and filters.matches(products[r]) for r in rows], bool)

            matches = result_set(stack, tokens, qvec, keep, MATCH_LIMIT if limit is None else limit,
                                 weights=weights)
            cand = matches.pool  # the pool does not depend on the page: a page of 10 and a run of 100 share it
            if matches.total == 0:
                return RankedSet.empty()
            order, scores, feats = stack.rank(query, tokens, cand, self.use_cross_encoder, weights=weights)
            shown = matches.member[order]  # the ranker orders its whole pool; the ranked head is its matches
            order, scores = order[shown], scores[shown]
            liked = self.affinity(user_id) if user_id else {}
            personal = np.zeros(len(order))
            if liked:
                share = np.asarray([liked.get(leaf_category(stack.catalog.products[int(cand.rows[i])]), 0.0)
                                    for i in order])
                spread = float(scores.max() - scores.min()) if len(scores) > 1 else 1.0
                personal = PERSONAL_WEIGHT * (spread or 1.0) * share
                again = np.argsort(-(scores + personal), kind="stable")
                order, scores, personal = order[again], (scores + personal)[again], personal[again]
            catalog, tail = stack.catalog, matches.tail
            head_at = cand.rows[order]
            explainer = None
            if lazy:
                head: Sequence[ScoredItem] = HeadItems(head_at, scores, catalog)

                def explainer(positions: Sequence[int]) -> list[ScoredItem]:
                    return self._explain(query, cand, order, scores, personal, feats, positions)
            else:
                start, stop = (0, len(order)) if explain is None else explain
                start, stop = max(0, start), max(0, min(stop, len(order)))
                explained = self._explain(query, cand, order, scores, personal, feats, range(start, stop))
                ids = catalog.ids
                head = [ScoredItem(ids[r], s, {}, []) for r, s in zip(head_at.tolist(), scores.tolist(), strict=True)]
                head[start:stop] = explained
            floor = float(scores.min()) - 1.0 if len(scores) else 0.0
            stock = catalog.in_stock()
            return RankedSet(head, CatalogRows(tail, catalog), CatalogRows(tail, catalog, "products"), floor,
                             matches.total, head_products=CatalogRows(head_at, catalog, "products"),
                             explainer=explainer, head_stock=stock[head_at], tail_stock=stock[tail])

    def _explain(self, query: str, cand: Any, order: np.ndarray, scores: np.ndarray, personal: np.ndarray,
                 feats: np.ndarray, positions: Sequence[int]) -> list[ScoredItem]:
        """Result objects of the ranked head's ``positions``, with score parts and reasons."""
        from shoprank.ranking.features import FEATURES
        from shoprank.text import words

        if not len(positions):
            return []
        stack = self.stack
        ids = stack.catalog.ids
        query_words = [w for w in words(query)]
        surface = surface_forms(query)
        picked = order[np.asarray(positions, np.int64)]
        page_rows = cand.rows[picked]
        page_titles = stack.titles.gather(page_rows, [stack.catalog.products[r] for r in page_rows],
                                          stack.stats).title
        ce_column = FEATURES.index("ce")
        items = []
        for title, position, idx in zip(page_titles, positions, picked.tolist(), strict=True):
            row = int(cand.rows[idx])
            product = stack.catalog.products[row]
            parts = {"bm25": float(cand.bm25[idx]), "dense": float(cand.dense[idx])}
            ce = feats[idx, ce_column]
            if np.isfinite(ce):
                parts["ce"] = float(ce)
            parts["fusion"] = float(scores[position] - personal[position])
            title_words = set(title.split()) if title is not None else set()
            reasons = reasons_for(query_words, title_words, parts, surface)
            if personal[position] > 0:
                parts["personal"] = float(personal[position])
                reasons.append(f"you like {leaf_category(product)}")
            items.append(ScoredItem(ids[row], float(scores[position]), parts, reasons))
        return items

    def correction(self, query: str) -> str | None:
        """The query as the spelling index corrects it ("did you mean"), or None when it changes nothing."""
        with self._lock.read():
            return self.stack.correction(query.strip())

    def suggestion(self, query: str) -> str | None:
        """For a query nothing matches: a corrected query that matches products ("did you mean"), else None.
        Tries the spelling index's correction, then its looser one (:meth:`SpellCorrector.suggest`)."""
        spell = self.stack.spell
        if spell is None:
            return None
        from shoprank.text import words

        typed = words(query.strip())
        for fixed in (spell.correct(typed), spell.suggest(typed)):
            if fixed != typed and self.search(" ".join(fixed), k=1)[1] > 0:
                return " ".join(fixed)
        return None

    def closest(self, query: str, n: int, filters: SearchFilters | None = None) -> list[ScoredItem]:
        """The ``n`` products nearest to ``query`` by meaning, whether or not they match it (for an empty
        answer, when the shop asks for them: never part of the results). Lexical-only stacks have none."""
        stack = self.stack
        if n <= 0 or stack.lexical_only or not query.strip():
            return []
        qvec = self.embed_query(query.strip())
        with self._lock.read():
            rows, cos = stack.dense.search(qvec[None, :], n * 4 if filters else n, stack.catalog.alive)
            out = []
            for row, score in zip(rows[0].tolist(), cos[0].tolist(), strict=True):
                product = stack.catalog.products[row] if row >= 0 else None
                if product is None or (filters is not None and not filters.matches(product)):
                    continue
                out.append(ScoredItem(product.id, float(score), {"dense": float(score)},
                                      ["closest in meaning: does not match the query"]))
        return out[:n]

    def rerank(self, query: str, ids: Sequence[str]) -> list[tuple[str, float]]:
        """Order the given products for ``query`` (the cross-encoder scores all of them when loaded).

        Ids the catalogue does not know come last, below every known one, in their given order."""
        stack = self.stack
        with self._lock.read():
            ids = list(dict.fromkeys(ids))
            rows = stack.catalog.rows(ids)
            known = rows >= 0
            krows = rows[known]
            out: list[tuple[str, float]] = []
            if len(krows):
                scores = stack.judged_scores(query, stack.tokens(query), krows, self.embed_query(query))[0]
                kids = [i for i, k in zip(ids, known, strict=True) if k]
                out = sorted(zip(kids, scores.astype(float).tolist(), strict=True), key=lambda p: -p[1])
            floor = (min(s for _, s in out) if out else 0.0) - 1.0
            out += [(pid, floor - n) for n, pid in enumerate(i for i, k in zip(ids, known, strict=True) if not k)]
        return out

    def context(self, ids: Sequence[str]) -> tuple[dict[str, Product], Any]:
        """What the re-ranking stage needs of ``ids``: their products and a function giving their text vectors."""
        from shoprank.rerank.context import search_context

        return search_context(self.stack, ids)

    def search_ids(self, query: str, top: int = 100) -> list[tuple[str, float]]:
        """The whole-catalogue ranking for batch runs: (product id, score), best first."""
        items, _ = self.search(query, k=top)
        return [(item.id, item.score) for item in items]
