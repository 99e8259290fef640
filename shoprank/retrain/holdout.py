"""The most recent traffic, held out: what a retrained candidate and the serving model are both scored on.

The cutoff is the moment from which the last ``share`` of the shop's events happened. The candidate learns only
from what came before it; both models are then asked what the shoppers did after it:

* recommendations: for each user active after the cutoff, the history before it and the first new item they
  touched after it (leave-one-out on time), scored by NDCG@10 over the whole catalogue, as served
  (``Recommender.recommend``);
* search: the search impressions after the cutoff whose results were clicked, carted or bought (attributed
  events), each query's items graded click 1, add to cart 2, purchase 3, scored by NDCG@10 of the engine's
  full-catalogue search for the query.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoprank.data.limits import EVENT_GRADES
from shoprank.data.records import Event
from shoprank.evaluation.metrics import ndcg_at_k

K = 10
GRADES = EVENT_GRADES  # the publish verdict grades traffic as search learns from it


def recent_cutoff(timestamps: Sequence[float], share: float) -> float:
    """The time from which the last ``share`` of the timestamps lie (+inf when there are none)."""
    if not len(timestamps):
        return float("inf")
    ordered = np.sort(np.asarray(timestamps, np.float64))
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * (1.0 - share)))])


@dataclass
class RecHoldout:
    users: list[str] = field(default_factory=list)
    histories: list[list[Event]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)


def recommend_holdout(events: Sequence[Event], cutoff: float, known: set[str], max_users: int = 2000,
                      history: int = 50, seed: int = 0) -> RecHoldout:
    """Users with events before and after ``cutoff``: their history before it and their first new item after."""
    before: dict[str, list[Event]] = {}
    target: dict[str, str] = {}
    for e in events:  # time order
        if e.timestamp < cutoff:
            before.setdefault(e.user_id, []).append(e)
        elif e.user_id in before and e.user_id not in target and e.item_id in known and \
                e.item_id not in {h.item_id for h in before[e.user_id]}:
            target[e.user_id] = e.item_id
    users = sorted(target)
    if len(users) > max_users:
        users = sorted(random.Random(seed).sample(users, max_users))
    out = RecHoldout()
    for u in users:
        out.users.append(u)
        out.histories.append(before[u][-history:])
        out.targets.append(target[u])
    return out


def score_recommender(rec: Any, holdout: RecHoldout) -> float:
    """Mean NDCG@10 of the served top-10 against each held-out user's next item."""
    if not len(holdout):
        raise ValueError("no held-out users to score on")
    scores = [ndcg_at_k([i.id for i in rec.recommend(u, k=K, history=h)], {t: 1.0}, K)
              for u, h, t in zip(holdout.users, holdout.histories, holdout.targets, strict=True)]
    return float(np.mean(scores))


def search_holdout(store: Any, cutoff: float, max_queries: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Query -> {product id: grade} from the attributed events of search impressions at or after ``cutoff``."""
    surfaces = {i.request_id: i for i in store.iter_impressions(since=cutoff, surfaces=["search"])}
    graded: dict[str, dict[str, float]] = {}
    for e in store.iter_events(types=list(GRADES)):
        impression = surfaces.get(e.request_id or "")
        if impression is None or not impression.query:
            continue
        items = graded.setdefault(impression.query, {})
        items[e.item_id] = max(items.get(e.item_id, 0.0), GRADES[e.type])
    queries = sorted(graded)
    if len(queries) > max_queries:
        queries = sorted(random.Random(seed).sample(queries, max_queries))
    return {q: graded[q] for q in queries}


def score_search(engine: Any, holdout: dict[str, dict[str, float]]) -> float:
    """Mean NDCG@10 of the engine's full-catalogue search over the held-out queries."""
    if not holdout:
        raise ValueError("no held-out queries to score on")
    return float(np.mean([ndcg_at_k([i.id for i in engine.search(q, k=K)[0]], gains, K)
                          for q, gains in holdout.items()]))
