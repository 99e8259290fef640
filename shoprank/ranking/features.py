"""Ranking features of (query, candidate) pairs: lexical, dense, cross-encoder, popularity, price.

:func:`compute_features` returns one row per candidate in :data:`FEATURES` order. A feature that
cannot be computed for a candidate (no cross-encoder score, no price) is NaN, which LightGBM
treats as missing.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoprank.data.limits import EVENT_WEIGHTS
from shoprank.data.records import Event, Product
from shoprank.retrieval.bm25 import FIELDS, BM25Index
from shoprank.text import words

FEATURES = (
    *(f"bm25_{f}" for f in FIELDS), "bm25", "bm25_rel", "dense", "dense_rel", "ce", "ce_rel",
    "coverage", "title_coverage", "number_coverage", "exact_phrase", "category_match", "brand_match",
    "popularity", "ctr", "log_price", "price_rel", "query_len", "title_len",
)
CE_FEATURES = ("ce", "ce_rel")
_INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class ItemStats:
    """Per-product popularity (log of the event count weighted by :data:`~shoprank.data.limits.EVENT_WEIGHTS`)
    and click-through from events."""

    popularity: dict[str, float] = field(default_factory=dict)
    ctr: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[Event], skip_queries: set[str] | None = None) -> ItemStats:
        """``skip_queries``: normalised queries whose events must not count (held-out queries)."""
        weight: Counter[str] = Counter()
        views: Counter[str] = Counter()
        clicks: Counter[str] = Counter()
        for event in events:
            if skip_queries and event.query and " ".join(event.query.lower().split()) in skip_queries:
                continue
            weight[event.item_id] += EVENT_WEIGHTS[event.type]
            if event.type == "view":
                views[event.item_id] += 1
            elif event.type in ("click", "purchase", "add_to_cart"):
                clicks[event.item_id] += 1
        return cls(
            popularity={i: math.log1p(w) for i, w in weight.items()},
            ctr={i: (clicks[i] + 0.1) / (views[i] + clicks[i] + 1.0) for i in weight},
        )

    def save(self, folder: Path) -> None:
        (folder / "item_stats.json").write_text(json.dumps({"popularity": self.popularity, "ctr": self.ctr}))

    @classmethod
    def load(cls, folder: Path) -> ItemStats:
        data = json.loads((folder / "item_stats.json").read_text())
        return cls(data["popularity"], data["ctr"])


@dataclass
class RowView:
    """The query-independent facts of some candidate rows (NaN / None where a row has no product)."""

    title: list[str | None]  # " w1 w2 ... ": normalised title words between spaces
    title_len: np.ndarray  # (n,) words in the title
    brand: list[frozenset[str] | None]  # the brand's words; None: no brand
    popularity: np.ndarray  # (n,)
    ctr: np.ndarray  # (n,)
    log_price: np.ndarray  # (n,) log1p(price)
    price: np.ndarray  # (n,) float64


class RowFacts:
    """Per-row facts that do not depend on the query (normalised title, brand words, popularity, price),
    computed once per catalogue row and reused by every query. Rows are append-only, so a row's facts never
    change; a row whose product is unknown is not cached. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: ItemStats | None = None
        self._reset(0)

    def _reset(self, n: int) -> None:
        self._known = np.zeros(n, bool)
        self._title: list[str | None] = [None] * n
        self._brand: list[frozenset[str] | None] = [None] * n
        self._numbers = np.full((n, 5), np.nan)  # title_len, popularity, ctr, log_price, price

    def _grow(self, n: int) -> None:
        extra = n - len(self._known)
        if extra > 0:
            self._known = np.concatenate([self._known, np.zeros(extra, bool)])
            self._title += [None] * extra
            self._brand += [None] * extra
            self._numbers = np.concatenate([self._numbers, np.full((extra, 5), np.nan)])

    def _fill(self, row: int, product: Product, stats: ItemStats | None) -> None:
        title = " " + " ".join(words(product.title)) + " "
        self._title[row] = title
        self._brand[row] = frozenset(words(product.brand)) if product.brand else None
        numbers = self._numbers[row]
        numbers[0] = title.count(" ") - 1
        if stats is not None:
            numbers[1] = stats.popularity.get(product.id, 0.0)
            numbers[2] = stats.ctr.get(product.id, np.nan)
        if product.price is not None:
            numbers[3] = math.log1p(product.price)
            numbers[4] = product.price
        self._known[row] = True

    def warm(self, products: Sequence[Product | None], stats: ItemStats | None) -> None:
        """Compute every row's facts now (at load) instead of on each row's first query."""
        rows = np.arange(len(products))
        self.gather(rows, products, stats)

    def gather(self, rows: np.ndarray, products: Sequence[Product | None], stats: ItemStats | None) -> RowView:
        """The facts of ``rows`` (whose products are ``products``, in the same order)."""
        rows = np.asarray(rows, dtype=np.int64)
        with self._lock:
            if stats is not self._stats:  # new popularity figures: everything cached is stale
                self._stats = stats
                self._reset(0)
            if len(rows):
                self._grow(int(rows.max()) + 1)
            missing = np.flatnonzero(~self._known[rows])
            unknown = np.zeros(len(rows), bool)
            for i in missing.tolist():
                product = products[i]
                if product is None:
                    unknown[i] = True
                else:
                    self._fill(int(rows[i]), product, stats)
            numbers = self._numbers[rows]  # (n, 5), a copy
            title = [self._title[r] for r in rows.tolist()]
            brand = [self._brand[r] for r in rows.tolist()]
        if unknown.any():
            numbers[unknown] = np.nan
            for i in np.flatnonzero(unknown).tolist():
                title[i] = brand[i] = None
        return RowView(title, numbers[:, 0], brand, numbers[:, 1], numbers[:, 2], numbers[:, 3], numbers[:, 4])


def compute_features(
    bm25: BM25Index,
    tokens: list[str],
    query: str,
    rows: np.ndarray,
    products: Sequence[Product | None],
    dense: np.ndarray,
    ce: np.ndarray | None = None,
    stats: ItemStats | None = None,
    titles: RowFacts | None = None,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Features of the candidate ``rows`` for one query, shape (len(rows), len(FEATURES)).

    ``titles`` caches the query-independent part per row (a fresh one is used when not given). ``weights``
    (one per token, default all 1, as :meth:`BM25Index.score` takes them): the BM25 features count each term
    times its weight and the coverage features are weighted means over the terms."""
    n = len(rows)
    out = np.full((n, len(FEATURES)), np.nan, np.float32)
    if n == 0:
        return out
    terms, names, blocks, combined = bm25.term_blocks(tokens, rows)  # blocks: each (n, terms)
    column_weights = bm25.term_weights(tokens, weights, terms)  # (terms,) or None: all 1

    def term_sum(block: np.ndarray) -> np.ndarray:  # (n, terms) -> (n,)
        return block.sum(axis=1) if column_weights is None else block @ column_weights

    def term_mean(matched: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:  # (n, terms) bool -> (n,)
        if columns is not None:
            matched = matched[:, columns]
        if column_weights is None:
            return matched.mean(axis=1)
        w = column_weights if columns is None else column_weights[columns]
        return (matched.astype(np.float32) @ w) / max(float(w.sum()), 1e-12)

    per_field = np.zeros((n, len(FIELDS)), np.float32)
    for f, block in blocks.items():
        per_field[:, FIELDS.index(f)] = term_sum(block)
    out[:, : len(FIELDS)] = per_field
    weights = np.asarray([bm25.config.weights.get(f, 0.0) for f in FIELDS], np.float32)
    total = per_field @ weights
    out[:, _INDEX["bm25"]] = total
    out[:, _INDEX["bm25_rel"]] = total / total.max() if total.max() > 0 else 0.0
    out[:, _INDEX["dense"]] = dense
    out[:, _INDEX["dense_rel"]] = dense - dense.max()
    if ce is not None:
        out[:, _INDEX["ce"]] = ce
        if np.isfinite(ce).any():
            out[:, _INDEX["ce_rel"]] = ce - np.nanmax(ce)
    if len(terms):
        matched = combined != 0  # (n, terms)
        out[:, _INDEX["coverage"]] = term_mean(matched)
        numeric = np.asarray([name[0].isdigit() for name in names])
        if numeric.any():
            out[:, _INDEX["number_coverage"]] = term_mean(matched, numeric)
        if "title" in blocks:
            out[:, _INDEX["title_coverage"]] = term_mean(blocks["title"] != 0)
        if "category" in blocks:
            out[:, _INDEX["category_match"]] = term_mean(blocks["category"] != 0)
    else:
        out[:, _INDEX["coverage"]] = 0.0
    phrase = " " + " ".join(words(query)) + " "
    query_words = set(phrase.split())
    out[:, _INDEX["query_len"]] = len(query_words)
    view = (titles or RowFacts()).gather(rows, products, stats)
    has = np.asarray([t is not None for t in view.title])
    long_phrase = len(phrase) > 2
    out[:, _INDEX["exact_phrase"]] = [np.nan if t is None else float(long_phrase and phrase in t) for t in view.title]
    out[:, _INDEX["title_len"]] = view.title_len
    out[:, _INDEX["brand_match"]] = [np.nan if b is None else float(bool(b) and b <= query_words)
                                     for b in view.brand]
    if stats is not None:
        out[:, _INDEX["popularity"]] = view.popularity
        out[:, _INDEX["ctr"]] = view.ctr
    out[:, _INDEX["log_price"]] = view.log_price
    priced = has & ~np.isnan(view.price)
    if priced.any():
        median = float(np.median(view.price[priced]))
        if median > 0:
            out[:, _INDEX["price_rel"]] = np.expm1(out[:, _INDEX["log_price"]]) / median
    return out
