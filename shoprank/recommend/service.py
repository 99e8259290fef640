"""The recommender as a service: the latest bundle plus the shop's live store.

A user's history is read from the store at call time, so events that arrived after training
change the next answer without retraining. Every history length goes through one cascade
(shoprank.recommend.sources, .features, .ranker): the candidate sources (sequence model,
co-visitation, item-to-item, text, cold items, trending) and LambdaMART over their union; a user
with no history gets the trending source's list. Every result carries its score parts and
short reasons. A baseline bundle (no sequence model, :mod:`shoprank.baseline`) ranks by trending items,
item-to-item neighbours and text similarity of the latest events instead.

Cold slot: items with almost no training events (new products included) rarely win, since their
ID embedding has learnt next to nothing. When the bundle sets ``cold_slot_threshold`` (chosen on
validation), the last place of a list goes to the cold item whose text is closest to one of the
user's latest events, if that cosine reaches the threshold and the item is not already in the list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprank.cascade.base import Request, top_k
from shoprank.data.records import Event, Product
from shoprank.recommend import artifacts
from shoprank.recommend.interactions import Catalogue, history_arrays
from shoprank.recommend.item2item import NeighbourTable
from shoprank.recommend.sources import Histories
from shoprank.results import ScoredItem
from shoprank.shops import Shop
from shoprank.store.base import Store

VERBS = {"view": "viewed", "click": "clicked", "add_to_cart": "added to your cart", "purchase": "bought",
         "rating": "rated"}
SIMILAR_TEXT_WEIGHT = 0.5  # similar(): weight of text cosine against normalised co-visitation
COLD_SLOT_MAX_COUNT = 2  # items seen at most this often in training may take the cold slot
COLD_SLOT_WINDOW = 20  # the cold slot compares candidates with this many latest events
PRODUCT_CACHE = 50_000  # products the re-ranking stage's look-ups keep in memory (then the cache starts again)
BASELINE_HISTORY = 10  # a baseline bundle (no sequence model) ranks by this many latest events
STRENGTH = {"view": 0, "click": 1, "rating": 2, "add_to_cart": 3, "purchase": 4}
"""Which of a user's events with one product a reason names: the strongest (a purchase over a click)."""


def covisit_matrix(table: NeighbourTable) -> sp.csr_matrix:
    """The neighbour table as a sparse (n_items + 1) x (n_items + 1) matrix."""
    n, keep = table.idx.shape
    rows = np.repeat(np.arange(n), keep)
    m = sp.csr_matrix((table.score.ravel(), (rows, table.idx.ravel())), shape=(n, n), dtype=np.float32)
    m.eliminate_zeros()
    return m


def covisit_match(histories: Sequence[np.ndarray], covisit: sp.csr_matrix) -> np.ndarray:
    """Sum of co-visitation scores from each history item: (n, n_items + 1)."""
    if len(histories) == 1:  # one user (serving): add the rows directly
        out = np.zeros((1, covisit.shape[0]), dtype=np.float32)
        for item in histories[0]:
            lo, hi = covisit.indptr[item], covisit.indptr[item + 1]
            out[0, covisit.indices[lo:hi]] += covisit.data[lo:hi]
        return out
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, np.int64)
    h = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(histories), covisit.shape[0]))
    return np.asarray((h @ covisit).todense(), dtype=np.float32)


def cold_slot_candidates(histories: Sequence[np.ndarray], text_vectors: np.ndarray, cols: np.ndarray,
                         col_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each history, the item of ``cols`` (text vectors ``col_vectors``, unit length) most similar in text to
    one of its latest ``COLD_SLOT_WINDOW`` events, history items excluded: item indices (n,) and cosines (n,);
    item 0 and -inf where there is no candidate."""
    items = np.zeros(len(histories), dtype=np.int64)
    sims = np.full(len(histories), -np.inf, dtype=np.float32)
    if not len(cols):
        return items, sims
    for row, h in enumerate(histories):
        if not len(h):
            continue
        best = (text_vectors[h[-COLD_SLOT_WINDOW:]] @ col_vectors.T).max(axis=0)  # (n_cols,)
        best[np.isin(cols, h)] = -np.inf
        j = int(np.argmax(best))
        if np.isfinite(best[j]):
            items[row], sims[row] = cols[j], best[j]
    return items, sims


class Recommender:
    """Recommendations for one shop. Thread-safe for reads; ``add_products`` takes a lock."""

    def __init__(self, art: artifacts.RecArtifacts, store: Store | None = None) -> None:
        self.art = art
        self.store = store
        self.model = art.model
        self.catalogue = Catalogue()
        for item_id in art.item_ids:
            self.catalogue.add(item_id)
        self._titles: dict[str, str] = {}
        self._products: dict[str, Product] = {}
        self._lock = threading.Lock()
        self._refresh_vectors()
        self._covisit = covisit_matrix(art.covisit)
        self._slot = self._slot_items()
        self.stage = self._stage()

    # construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, shop: Shop, version: str | None = None) -> Recommender:
        """The latest "recommend" bundle of ``shop`` with its store. Raises BundleError if none.

        Products stored after training (no events yet) are added at once (:meth:`add_products`).
        """
        art = artifacts.load(shop.models_path, version)
        rec = cls(art, shop.store(create=False))
        products = list(rec.store.iter_products())
        rec._titles.update((p.id, p.title) for p in products)
        rec._products.update((p.id, p) for p in products[:PRODUCT_CACHE])  # read already: the re-ranking's look-ups
        rec.add_products([p for p in products if p.id not in rec.catalogue.index])
        return rec

    def _refresh_vectors(self) -> None:
        """The (N+1, d) item vectors cached for serving: the model's, or the text vectors of a baseline."""
        if self.model is None:
            self._vectors = None
            self._vectors_np = self.art.text_vectors
            return
        import torch

        with torch.no_grad():
            self._vectors = self.model.items.all()
        self._vectors_np = self._vectors.numpy()

    @property
    def is_baseline(self) -> bool:
        """A baseline bundle: trending, item-to-item neighbours and text similarity, no sequence model."""
        return self.model is None

    def _stage(self) -> Any:
        """The ranking stage over the bundle's arrays (rebuilt when products are added); None for a baseline."""
        if self.model is None:
            return None
        from shoprank.recommend import sources as src
        from shoprank.recommend.features import ItemTable
        from shoprank.recommend.ranker import RankingStage, StageConfig

        art, resolve = self.art, self.resolve
        stage_sources = [
            src.SequenceSource(self.model, self._vectors, resolve),
            src.CovisitSource(self._covisit, resolve),
            src.ItemToItemSource(self._covisit, resolve),
            src.TextSource(art.text_vectors, resolve),
            src.ColdSource(art.text_vectors, art.counts, resolve),
            src.TrendingSource(art.trending, art.popularity, resolve),
        ]
        items = ItemTable(art.text_vectors, art.popularity, art.trending, art.counts, art.categories,  # type: ignore[arg-type]
                          art.prices, self._covisit)  # type: ignore[arg-type]
        config = StageConfig(**art.params["ranking_stage"]) if "ranking_stage" in art.params else None
        return RankingStage(stage_sources, items, art.ranker, config)

    @property
    def version(self) -> str:
        return self.art.version

    @property
    def n_items(self) -> int:
        return len(self.catalogue)

    def add_products(self, products: Sequence[Product]) -> int:
        """Give products with no events a text vector (the training encoder) so they can be recommended now."""
        import torch

        from shoprank.recommend.text import DEFAULT_MAX_LENGTH, encode_items

        for p in products:  # changed records replace cached ones (the re-ranking stage reads them)
            if p.id in self._products:
                self._products[p.id] = p
        new = [p for p in products if p.id not in self.catalogue.index]
        if not new:
            return 0
        vectors = encode_items([p.text() for p in new], self.art.params.get("encoder", "default"),
                               max_length=int(self.art.params.get("text_max_length", DEFAULT_MAX_LENGTH)))
        names = list(self.art.params.get("categories", []))
        codes = {name: i for i, name in enumerate(names)}
        with self._lock, torch.no_grad():
            for p in new:
                self.catalogue.add(p.id, p.text())
                self._titles[p.id] = p.title
            if self.model is not None:
                self.model.add_items(torch.from_numpy(vectors))
            self.art.text_vectors = np.vstack([self.art.text_vectors, vectors])
            pad = np.zeros(len(new), dtype=np.float32)
            self.art.popularity = np.concatenate([self.art.popularity, pad])
            self.art.trending = np.concatenate([self.art.trending, pad])
            self.art.counts = np.concatenate([self.art.counts, pad])
            self.art.categories = np.concatenate([self.art.categories,  # type: ignore[list-item]
                                                  np.array([codes.get(p.category, -1) for p in new], np.int32)])
            self.art.prices = np.concatenate([self.art.prices,  # type: ignore[list-item]
                                              np.array([np.nan if p.price is None else p.price for p in new],
                                                       np.float32)])
            self.art.covisit.grow(len(new))
            self.art.bought.grow(len(new))
            self._refresh_vectors()
            self._covisit = covisit_matrix(self.art.covisit)
            self._slot = self._slot_items()
            self.stage = self._stage()
        return len(new)

    def _slot_items(self) -> tuple[np.ndarray, np.ndarray]:
        """The items that may take the cold slot and their text vectors (contiguous)."""
        cols = np.flatnonzero(self.art.counts <= COLD_SLOT_MAX_COUNT)
        cols = cols[cols > 0]
        return cols, np.ascontiguousarray(self.art.text_vectors[cols])

    @property
    def cold_slot_threshold(self) -> float | None:
        value = self.art.params.get("cold_slot_threshold")
        return None if value is None else float(value)

    def cold_slot(self, histories: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Each history's best cold-slot candidate and its text cosine (see :func:`cold_slot_candidates`)."""
        return cold_slot_candidates(histories, self.art.text_vectors, *self._slot)

    def cold_slot_items(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The item each history's list gives its last place to under the bundle's threshold (0: none)."""
        threshold = self.cold_slot_threshold
        if threshold is None:
            return np.zeros(len(histories), dtype=np.int64)
        items, sims = self.cold_slot(histories)
        return np.where(sims >= threshold, items, 0)

    # the served path, batch-shaped -------------------------------------------------------------
    def resolve(self, requests: Sequence[Request]) -> Histories:
        """Requests -> the histories the ranking stage reads: the request's own events or the store's latest."""
        items, types, exclude = [], [], []
        for request in requests:
            history = list(request.history) if request.history is not None else (
                self.store.user_events(request.user_id or "", limit=self._history_limit) if self.store else [])
            h, t = history_arrays(history, self.catalogue)
            items.append(h)
            types.append(t)
            exclude.append(np.array([self.catalogue.index[i] for i in request.exclude if i in self.catalogue.index],
                                    dtype=np.int64))
        return Histories(items, types, exclude)

    @property
    def _history_limit(self) -> int:
        return self.model.cfg.max_len if self.model is not None else BASELINE_HISTORY

    def score_batch(self, histories: Sequence[np.ndarray], types: Sequence[np.ndarray]) -> np.ndarray:
        """The served ranking of many histories as full-catalogue scores, (n, n_items + 1): the ranking stage's
        score for each candidate it ranked, -inf for every other item (what evaluation scores)."""
        out = np.full((len(histories), self.n_items + 1), -np.inf, dtype=np.float32)
        if self.model is None:  # baseline: what recommend() ranks by, for every item
            for row, (items, _types) in enumerate(zip(histories, types, strict=True)):
                out[row] = self._baseline_scores(np.asarray(items, np.int64))
            return out
        h = Histories(list(histories), list(types))
        step = self.stage.config.batch_size
        for start in range(0, len(h), step):
            ranked = self.stage.rank(h.slice(start, start + step))
            rows = np.repeat(np.arange(len(ranked.ids)), ranked.ids.shape[1])
            keep = ranked.ids.ravel() >= 0
            out[start + rows[keep], ranked.ids.ravel()[keep]] = ranked.scores.ravel()[keep]
        return out

    # public API ----------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, history: list[Event] | None = None,
                  exclude: set[str] | None = None, slot_at: int | None = None) -> list[ScoredItem]:
        """Top ``k`` items for ``user_id``; ``history`` defaults to the store's latest events for the user.

        ``slot_at``: the place the cold slot takes (default ``k``; a caller that over-fetches for re-ranking
        passes its page size)."""
        got = self.recommend_lazily(user_id, k, history, exclude, slot_at)
        return got.explain(got.items)

    def recommend_lazily(self, user_id: str, k: int = 10, history: list[Event] | None = None,
                         exclude: set[str] | None = None, slot_at: int | None = None) -> Recommended:
        """:meth:`recommend`, with the score parts and reasons of the sequence model's items left for later:
        a caller that over-fetches for re-ranking and shows a page explains only the page
        (:meth:`Recommended.explain`), the most expensive part of a long list."""
        request = Request("recommend", user_id=user_id, history=None if history is None else tuple(history),
                          exclude=frozenset(exclude or ()))
        h = self.resolve([request])
        items, types = h.items[0], h.types[0]
        if self.model is None:
            return Recommended(self._baseline_recommend(items, types, h.banned(self.n_items + 1)[0], k))
        ranked = self.stage.rank(h)
        ids, scores = ranked.ids[0], ranked.scores[0]
        shown = np.flatnonzero(ids >= 0)[:k]
        if not len(items):  # no history: the trending list, explained at once (no look-ups)
            out = []
            for j in shown:
                parts = {"trending": float(self.art.trending[ids[j]]),
                         "popularity": float(self.art.popularity[ids[j]])}
                reasons = [self._trending_reason() if self.art.trending[ids[j]] > 0 else "popular"]
                out.append(self._item(int(ids[j]), float(scores[j]), parts, reasons))
            return Recommended(out)
        names = self.catalogue.ids  # the long list to re-rank, made without a call per item
        out = [ScoredItem(names[i - 1], score, {}, [])
               for i, score in zip(ids[shown].tolist(), scores[shown].tolist(), strict=True)]
        column_of = {id(item): int(j) for item, j in zip(out, shown, strict=True)}

        def explain_one(column: int) -> tuple[dict[str, float], list[str]]:
            parts = {"ranker": float(scores[column]),
                     **{name: float(v[0, column]) for name, v in ranked.parts.items() if np.isfinite(v[0, column])}}
            return parts, self._why(int(ids[column]), items, types)

        slotted = self._with_cold_slot(out, items, types, h.banned(self.n_items + 1)[0], k, slot_at)
        # the model's items to explain later; the cold slot's item comes with its own parts and reason
        place = {item.id: column_of[id(item)] for item in slotted if id(item) in column_of}
        return Recommended(slotted, lambda chosen: _explained(chosen, place, explain_one))

    def _baseline_scores(self, items: np.ndarray) -> np.ndarray:
        """A baseline's scores of every item: trending for an empty history, else item-to-item neighbours and text
        similarity of the latest events."""
        if not len(items):
            from shoprank.recommend.sources import trending_signal

            return trending_signal(self.art.trending, self.art.popularity)
        return self._item2item(items[-BASELINE_HISTORY:])

    def _baseline_recommend(self, items: np.ndarray, types: np.ndarray, banned: np.ndarray, k: int
                            ) -> list[ScoredItem]:
        scores = np.where(banned, -np.inf, self._baseline_scores(items))
        if not len(items):
            trending = self._trending_reason()
            return [self._item(i, float(scores[i]), {"trending": float(self.art.trending[i]),
                                                      "popularity": float(self.art.popularity[i])},
                               [trending if self.art.trending[i] > 0 else "popular"]) for i in top_k(scores, k)]
        return [self._item(i, float(scores[i]), {"item2item": float(scores[i])}, self._why(i, items, types))
                for i in top_k(scores, k)]

    def _item2item(self, items: np.ndarray) -> np.ndarray:
        scores = np.zeros(self.n_items + 1, dtype=np.float32)
        weights = np.linspace(0.5, 1.0, len(items))  # recent counts more
        for weight, item in zip(weights, items, strict=True):
            idx, s = self.art.covisit.row(int(item))
            if len(s):
                scores[idx] += weight * s / s[0]
        # text similarity to each of the latest events in one pass over the item vectors (one pass per event
        # read all of them up to ten times: 276 ms a recommendation over 100,000 items)
        vectors = self.art.text_vectors
        text = vectors @ vectors[np.asarray(items, np.int64)].T  # (n + 1, h)
        scores += np.maximum(text, 0) @ (0.5 * weights).astype(np.float32)
        return scores

    def _with_cold_slot(self, results: list[ScoredItem], items: np.ndarray, types: np.ndarray, banned: np.ndarray,
                        k: int, slot_at: int | None) -> list[ScoredItem]:
        """``results`` with place ``slot_at`` (1-based, default ``k``) given to the cold-slot item, when there is one
        and it is not already placed higher (module docstring). It takes the score of the item it displaces, so
        the list stays in score order for what re-ranks it."""
        threshold = self.cold_slot_threshold
        place = min(slot_at or k, k)
        if threshold is None or place < 2 or not results:
            return results
        cols, vectors = self._slot
        allowed = ~banned[cols]
        if not allowed.any():
            return results
        item, sim = cold_slot_candidates([items], self.art.text_vectors, cols[allowed], vectors[allowed])
        chosen, cosine = int(item[0]), float(sim[0])
        ids = [r.id for r in results]
        chosen_id = self.catalogue.id_of(chosen) if chosen else ""
        if not chosen or cosine < threshold or chosen_id in ids[:place]:
            return results
        recent = items[-COLD_SLOT_WINDOW:]
        j = int(np.argmax(self.art.text_vectors[recent] @ self.art.text_vectors[chosen]))
        verb = VERBS.get(_TYPE_NAMES.get(int(types[-COLD_SLOT_WINDOW:][j]), "view"), "viewed")
        reason = (f"new here: its description is close to {self._title(self.catalogue.id_of(int(recent[j])))} "
                  f"you {verb}")
        rest = [r for r in results if r.id != chosen_id]
        score = rest[place - 1].score if len(rest) >= place else rest[-1].score
        slot = self._item(chosen, score, {"cold_slot": cosine}, [reason])
        return (rest[:place - 1] + [slot] + rest[place - 1:])[:k]

    def similar(self, item_id: str, k: int = 10) -> list[ScoredItem]:
        """Items like ``item_id``: text cosine blended with normalised co-visitation."""
        item = self._index(item_id)
        text = self.art.text_vectors @ self.art.text_vectors[item]
        covis = np.zeros_like(text)
        idx, s = self.art.covisit.row(item)
        if len(s):
            covis[idx] = s / s[0]
        scores = SIMILAR_TEXT_WEIGHT * text + (1 - SIMILAR_TEXT_WEIGHT) * covis
        scores[[0, item]] = -np.inf
        name = self._title(item_id)
        return [self._item(i, float(scores[i]), {"text": float(text[i]), "covisit": float(covis[i])},
                           [f"viewed together with {name}" if covis[i] > 0 else f"similar to {name}"])
                for i in top_k(scores, k)]

    def bought_together(self, item_id: str, k: int = 10) -> list[ScoredItem]:
        """Items bought in the same baskets as ``item_id`` (``shoprank.recommend.item2item.basket_pairs``), by
        confidence, with the support and confidence shown; empty when no pair has enough baskets behind it."""
        item = self._index(item_id)
        idx, s = self.art.bought.row(item)
        support = self.art.bought.row_support(item)
        name = self._title(item_id)
        if support is None:  # a bundle from before baskets: scores without counts
            return [self._item(int(i), float(v), {"copurchase": float(v)}, [f"often bought with {name}"])
                    for i, v in zip(idx[:k], s[:k], strict=True)]
        out = []
        for i, confidence, n in zip(idx[:k], s[:k], support[:k], strict=True):
            baskets = max(int(round(n / confidence)), int(n)) if confidence > 0 else int(n)
            out.append(self._item(int(i), float(confidence), {"confidence": float(confidence), "support": float(n)},
                                  [f"bought with {name} in {int(n)} of {baskets} baskets ({confidence:.0%})"]))
        return out

    def context(self, ids: Sequence[str]) -> tuple[dict[str, Product], Any]:
        """What the re-ranking stage needs of ``ids``: their products (from the store, through a bounded cache
        that :meth:`add_products` and :meth:`forget_products` keep current) and their text vectors."""
        from shoprank.rerank.context import recommend_vectors

        cache = self._products  # read once per id: another request may empty it meanwhile
        found = {pid: product for pid in ids if (product := cache.get(pid)) is not None}
        missing = [pid for pid in ids if pid not in found]
        if missing and self.store is not None:
            read = {p.id: p for p in self.store.get_products(missing) if p is not None}
            if len(cache) + len(read) > PRODUCT_CACHE:
                cache.clear()
            cache.update(read)
            found.update(read)
        return found, recommend_vectors(self)

    def forget_products(self, ids: Sequence[str]) -> None:
        """Products deleted from the catalogue: the re-ranking stage no longer finds them."""
        for pid in ids:
            self._products.pop(pid, None)

    # helpers -------------------------------------------------------------------------------
    def _index(self, item_id: str) -> int:
        if item_id not in self.catalogue.index:
            raise KeyError(f"unknown item {item_id!r}")
        return self.catalogue.index[item_id]

    def _title(self, item_id: str) -> str:
        if item_id not in self._titles and self.store is not None:
            product = self.store.get_product(item_id)
            self._titles[item_id] = product.title if product else item_id
        title = self._titles.get(item_id, item_id)
        return title if len(title) <= 60 else title[:57] + "..."

    def _trending_reason(self) -> str:
        """What "trending" means here: the busiest products of the last days of the training log, dated, since
        that log may have ended long before today."""
        until = self.art.params.get("trend_until")
        if not until:
            return "popular lately"
        from datetime import UTC, datetime

        day = f"{datetime.fromtimestamp(float(until), UTC):%Y-%m-%d}"
        days = self.art.params.get("trend_days", 7)
        return f"popular up to {day}" if days is None else f"popular in the {float(days):g} days to {day}"

    def _why(self, item: int, items: np.ndarray, types: np.ndarray) -> list[str]:
        """'similar to X you bought': the history item whose vector is closest to the recommended one, named with
        the strongest of the user's events on it."""
        sims = self._vectors_np[items] @ self._vectors_np[item]
        j = int(np.argmax(sims))
        verb = VERBS[strongest_event(items, types, int(items[j]))]
        reasons = [f"similar to {self._title(self.catalogue.id_of(int(items[j])))} you {verb}"]
        if self.art.counts[item] == 0:
            reasons.append("new: its description matches what you looked at")
        return reasons

    def _item(self, idx: int, score: float, parts: dict[str, float], reasons: list[str]) -> ScoredItem:
        return ScoredItem(id=self.catalogue.id_of(int(idx)), score=score, parts=parts, reasons=reasons)


@dataclass
class Recommended:
    """A recommendation list whose items may still lack their score parts and reasons: ``explain(chosen)`` gives
    ``chosen`` (any of ``items``, possibly re-scored, reordered or given parts and reasons by a re-ranking stage
    since) with the model's parts first and its reasons before the ones added since."""

    items: list[ScoredItem]
    explain: Callable[[Sequence[ScoredItem]], list[ScoredItem]] = lambda chosen: list(chosen)


def _explained(chosen: Sequence[ScoredItem], place: dict[str, int],
               explain_one: Callable[[int], tuple[dict[str, float], list[str]]]) -> list[ScoredItem]:
    out = []
    for item in chosen:
        column = place.get(item.id)
        if column is None:  # not one of the model's (the cold slot's item): explained already
            out.append(item)
            continue
        parts, reasons = explain_one(column)
        out.append(ScoredItem(item.id, item.score, {**parts, **item.parts},
                              reasons + [r for r in item.reasons if r not in reasons]))
    return out


def strongest_event(items: np.ndarray, types: np.ndarray, item: int) -> str:
    """The strongest event type (:data:`STRENGTH`) among a history's events on ``item``."""
    names = [_TYPE_NAMES.get(int(t), "view") for t in types[items == item]]
    return max(names, key=lambda name: STRENGTH.get(name, 0), default="view")


def _type_names() -> dict[int, str]:
    from shoprank.recommend.interactions import TYPE_INDEX

    return {v: k for k, v in TYPE_INDEX.items()}


_TYPE_NAMES = _type_names()
