"""Ranking features of (query, candidate) pairs: lexical, dense, cross-encoder, popularity, price.

:func:`compute_features` returns one row per candidate in :data:`FEATURES` order. A feature that
cannot be computed for a candidate (no cross-encoder score, no price) is NaN, which LightGBM
treats as missing.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoprank.data.records import Event
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
    """Per-product popularity (log of weighted event count) and click-through from events."""

    popularity: dict[str, float] = field(default_factory=dict)
    ctr: dict[str, float] = field(default_factory=dict)

    WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0, "rating": 2.0}

    @classmethod
    def from_events(cls, events: Iterable[Event], skip_queries: set[str] | None = None) -> ItemStats:
        """``skip_queries``: normalised queries whose events must not count (held-out queries)."""
        weight: Counter[str] = Counter()
        views: Counter[str] = Counter()
        clicks: Counter[str] = Counter()
        for event in events:
            if skip_queries and event.query and " ".join(event.query.lower().split()) in skip_queries:
                continue
            weight[event.item_id] += cls.WEIGHTS.get(event.type, 1.0)
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


class TitleCache:
    """Normalised title words per row, computed once per row (exact-phrase and length features)."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def get(self, row: int, title: str) -> str:
        text = self._cache.get(row)
        if text is None:
            text = self._cache[row] = " " + " ".join(words(title)) + " "
        return text


def compute_features(
    bm25: BM25Index,
    tokens: list[str],
    query: str,
    rows: np.ndarray,
    products: list,
    dense: np.ndarray,
    ce: np.ndarray | None = None,
    stats: ItemStats | None = None,
    titles: TitleCache | None = None,
) -> np.ndarray:
    """Features of the candidate ``rows`` for one query, shape (len(rows), len(FEATURES))."""
    n = len(rows)
    out = np.full((n, len(FEATURES)), np.nan, np.float32)
    if n == 0:
        return out
    per_field = bm25.field_scores(tokens, rows)  # (n, fields)
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
    terms = bm25.query_terms(tokens)
    vocab_terms = [t for t in dict.fromkeys(tokens) if t in bm25.vocab]
    if len(terms):
        matched = bm25.matched_terms(tokens, rows)  # (n, terms)
        out[:, _INDEX["coverage"]] = matched.mean(axis=1)
        term_ids = {bm25.vocab[t]: t for t in vocab_terms}
        numeric = np.asarray([term_ids[t][0].isdigit() for t in terms])
        if numeric.any():
            out[:, _INDEX["number_coverage"]] = matched[:, numeric].mean(axis=1)
        title_m = bm25.matrices.get("title")
        if title_m is not None:
            in_title = (title_m[:, terms].tocsr()[rows] != 0).toarray()
            out[:, _INDEX["title_coverage"]] = in_title.mean(axis=1)
        cat_m = bm25.matrices.get("category")
        if cat_m is not None:
            out[:, _INDEX["category_match"]] = (cat_m[:, terms].tocsr()[rows] != 0).toarray().mean(axis=1)
    else:
        out[:, _INDEX["coverage"]] = 0.0
    phrase = " " + " ".join(words(query)) + " "
    query_words = set(phrase.split())
    out[:, _INDEX["query_len"]] = len(query_words)
    prices = []
    for i, (row, product) in enumerate(zip(rows, products, strict=True)):
        if product is None:
            continue
        if titles is not None:
            title = titles.get(int(row), product.title)
        else:
            title = " " + " ".join(words(product.title)) + " "
        out[i, _INDEX["exact_phrase"]] = float(len(phrase) > 2 and phrase in title)
        out[i, _INDEX["title_len"]] = title.count(" ") - 1
        if product.brand:
            brand_words = set(words(product.brand))
            out[i, _INDEX["brand_match"]] = float(bool(brand_words) and brand_words <= query_words)
        if stats is not None:
            out[i, _INDEX["popularity"]] = stats.popularity.get(product.id, 0.0)
            out[i, _INDEX["ctr"]] = stats.ctr.get(product.id, np.nan)
        if product.price is not None:
            out[i, _INDEX["log_price"]] = math.log1p(product.price)
            prices.append(product.price)
    if prices:
        median = float(np.median(prices))
        if median > 0:
            out[:, _INDEX["price_rel"]] = np.expm1(out[:, _INDEX["log_price"]]) / median
    return out
