"""A shop's search training data: labelled queries split by query.

Labels come from judgments, from the behaviour log (clicks, carts and purchases on served lists, corrected
for position bias: :mod:`shoprank.learning`), or both, whichever the shop has. Behaviour labels enter
training as judgments on the shop's grade scale, so every model trains on them the same way; held-out
queries keep their judgments (NDCG) and their served lists (the counterfactual click estimate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shoprank.data.limits import EVENT_GRADES
from shoprank.data.records import Event, Judgment, Product
from shoprank.data.splits import normalise_query, split_by_query

TEST_SHARE = 0.2  # the held-out queries of `evaluate search` and the bench
SPLIT_SEED = 0


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
    labels: str = "judgments"  # what the training labels came from: judgments, behaviour or both
    behaviour: dict[str, Any] = field(default_factory=dict)  # the click log, propensities and labels, summarised
    held_out_log: Any = None  # ClickLog of the held-out queries (counterfactual estimates)
    propensities: Any = None  # Propensities estimated from the training queries' lists
    stats: Any = None  # ItemStats (popularity, click-through) from training-period behaviour
    train_log: Any = None  # ClickLog of the training queries
    stat_events: list[Event] = field(default_factory=list)  # the events popularity is counted from

    def query_set(self, judgments: Sequence[Judgment]) -> QuerySet:
        return QuerySet.from_judgments(judgments, self.lowest)


LABEL_SOURCES = ("auto", "judgments", "behaviour", "both")


def load_search_data(store, test_share: float = TEST_SHARE, seed: int = SPLIT_SEED,
                     test_fold: tuple[int, int] | None = None, labels: str = "auto",
                     behaviour: Any = None, log: Any = None, until: float | None = None) -> SearchData:
    """Everything search trains on, with the held-out queries removed.

    ``test_fold=(f, folds)`` holds out fold ``f`` of ``kfold_by_query`` instead of a share. ``labels``: auto
    (both when the shop has judgments and a click log, else whichever it has), judgments, behaviour or both;
    ``behaviour``: a :class:`~shoprank.learning.BehaviourConfig`; ``log``: the click log (default: the store's);
    ``until``: behaviour (impressions and events) before this time only.
    """
    from shoprank.data.splits import assign_query, kfold_by_query, query_fold
    from shoprank.learning import BehaviourConfig, behaviour_gains, load_click_log, propensities_for, pseudo_judgments
    from shoprank.learning.labels import describe, item_stats

    if labels not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {labels!r}; valid: {', '.join(LABEL_SOURCES)}")
    behaviour = behaviour or BehaviourConfig()
    products = list(store.iter_products())
    judgments = store.judgments()
    log = log if log is not None else load_click_log(store, until)
    has_log = log.clicks() > 0
    if labels == "auto":
        labels = "both" if judgments and has_log else "judgments" if judgments else "behaviour"
    if labels in ("judgments", "both") and not judgments:
        raise ValueError("the shop has no judgments; train from behaviour (--labels behaviour) or ingest judgments")
    if labels in ("behaviour", "both") and not has_log:
        raise ValueError("the shop has no search clicks, carts or purchases on served lists (events with a query "
                         "and a position, or attributed to an impression); search needs judgments or such "
                         "behaviour to train")
    lowest = min(j.grade for j in judgments) if judgments else 0.0
    top_gain = (max(j.grade for j in judgments) - lowest or 1.0) if judgments else 1.0
    if test_fold is not None:
        split = kfold_by_query(judgments, folds=test_fold[1], seed=seed)[test_fold[0]]

        def held_out(query: str) -> bool:
            return query_fold(query, test_fold[1], seed) == test_fold[0]
    else:
        split = split_by_query(judgments, test_share=max(test_share, 0.0), seed=seed)

        def held_out(query: str) -> bool:
            return test_share > 0 and assign_query(query, test_share, 0.0, seed) == "test"
    test_queries = {normalise_query(j.query) for j in split.test} | {q for q in log.queries() if held_out(q)}
    train = list(split.train) if labels in ("judgments", "both") else []
    test = list(split.test)
    train_log = log.without(test_queries)
    summary: dict[str, Any] = {}
    propensities = stats = None
    events = [e for e in store.iter_events(types=list(EVENT_GRADES))
              if e.query and normalise_query(e.query) not in test_queries and (until is None or e.timestamp < until)]
    if labels in ("behaviour", "both"):
        propensities = propensities_for(train_log, behaviour)
        gains = behaviour_gains(train_log, propensities, behaviour)
        judged = {normalise_query(j.query) for j in train}
        gains = {q: g for q, g in gains.items() if q not in judged}  # a judged query keeps its judgments
        train += pseudo_judgments(gains, lowest, top_gain)
        summary = {"log": train_log.summary(), "propensities": propensities.to_dict(), "labels": describe(gains),
                   "config": asdict(behaviour)}
    stat_events: list[Event] = []
    if has_log:  # popularity and click-through from training-period behaviour only
        stat_events = [e for e in store.iter_events() if not (e.query and normalise_query(e.query) in test_queries)
                       and (until is None or e.timestamp < until)]
        stats = item_stats(stat_events, train_log, propensities, test_queries)
    return SearchData(products, lowest, top_gain, train, test, events, test_queries, labels, summary,
                      log.subset(test_queries), propensities, stats, train_log, stat_events)


def detect_language(products: Sequence[Product]) -> str:
    """"zh" when most products are Chinese (their ``language`` or their title's script), else "en"."""
    from shoprank.text import has_cjk

    sample = list(products[:: max(1, len(products) // 500)])
    zh = sum(1 for p in sample if (p.language or "").startswith("zh") or has_cjk(p.title))
    return "zh" if sample and zh > len(sample) / 2 else "en"
