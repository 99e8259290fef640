"""A shop's search training data: judged queries split by query, and query-carrying events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shoprank.data.records import Event, Judgment, Product
from shoprank.data.splits import normalise_query, split_by_query

TEST_SHARE = 0.2  # the held-out queries of `evaluate search` and the bench
SPLIT_SEED = 0
EVENT_GRADES = {"purchase": 1.0, "add_to_cart": 0.8, "click": 0.6}  # as a share of the top gain


@dataclass
class QuerySet:
    """query -> {product_id: gain}; gain = grade - the shop's lowest grade."""

    gains: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_judgments(cls, judgments: Sequence[Judgment], lowest: float) -> QuerySet:
        out = cls()
        for j in judgments:
            out.gains.setdefault(j.query, {})[j.product_id] = j.grade - lowest
        return out

    def queries(self) -> list[str]:
        return list(self.gains)

    def __len__(self) -> int:
        return len(self.gains)

    def subset(self, queries: Sequence[str]) -> QuerySet:
        return QuerySet({q: self.gains[q] for q in queries if q in self.gains})

    def evaluable(self) -> list[str]:
        """Queries with at least two judged products and not all of one grade (the protocol's rule)."""
        return [q for q, g in self.gains.items() if len(g) >= 2 and len(set(g.values())) > 1]


@dataclass
class SearchData:
    products: list[Product]
    lowest: float  # lowest grade of the shop's judgments
    top_gain: float  # highest gain
    train: list[Judgment]
    test: list[Judgment]
    events: list[Event]  # click / add_to_cart / purchase events that carry a query, train queries only
    test_queries: set[str]  # normalised

    def query_set(self, judgments: Sequence[Judgment]) -> QuerySet:
        return QuerySet.from_judgments(judgments, self.lowest)


def load_search_data(store, test_share: float = TEST_SHARE, seed: int = SPLIT_SEED,
                     test_fold: tuple[int, int] | None = None) -> SearchData:
    """Everything search trains on, with the held-out queries removed.

    ``test_fold=(f, folds)`` holds out fold ``f`` of ``kfold_by_query`` instead of a share.
    """
    from shoprank.data.splits import kfold_by_query

    products = list(store.iter_products())
    judgments = store.judgments()
    if not judgments:
        raise ValueError("the shop has no judgments; search needs judged queries to train and evaluate")
    lowest = min(j.grade for j in judgments)
    top_gain = max(j.grade for j in judgments) - lowest or 1.0
    if test_fold is not None:
        split = kfold_by_query(judgments, folds=test_fold[1], seed=seed)[test_fold[0]]
    elif test_share > 0:
        split = split_by_query(judgments, test_share=test_share, seed=seed)
    else:
        split = split_by_query(judgments, test_share=0.0, seed=seed)
    test_queries = {normalise_query(j.query) for j in split.test}
    events = [e for e in store.iter_events(types=list(EVENT_GRADES))
              if e.query and normalise_query(e.query) not in test_queries]
    return SearchData(products, lowest, top_gain, list(split.train), list(split.test), events, test_queries)


def detect_language(products: Sequence[Product]) -> str:
    """"zh" when most products are Chinese (their ``language`` or their title's script), else "en"."""
    from shoprank.text import has_cjk

    sample = list(products[:: max(1, len(products) // 500)])
    zh = sum(1 for p in sample if (p.language or "").startswith("zh") or has_cjk(p.title))
    return "zh" if sample and zh > len(sample) / 2 else "en"
