"""The click log: every served search list with what the shopper did at each position.

A :class:`ServedList` is one answer as shown (query, product ids in order, their positions) plus the best
outcome per shown product: ``click`` < ``add_to_cart`` < ``purchase`` (None: shown, nothing done).
:func:`build_click_log` joins impressions and events: an event carrying a ``request_id`` belongs to that
impression; without impressions, events carrying a ``query`` and a ``position`` are grouped per session and
query into lists that know only the products acted on (no skipped products: no negative evidence).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoprank.data.splits import normalise_query

OUTCOMES = ("click", "add_to_cart", "purchase")
"""Outcomes in increasing strength; a product's outcome in a list is the strongest one."""
_RANK = {name: i for i, name in enumerate(OUTCOMES)}


@dataclass(frozen=True)
class ServedList:
    """One served search answer and what came of it.

    ``items[i]`` was shown at ``positions[i]`` (0: the first result of the first page) and led to
    ``outcomes[i]``. ``complete``: every shown product is listed (from an impression), so a product without
    an outcome was shown and skipped; False for lists rebuilt from events alone."""

    key: str
    query: str  # normalised
    items: tuple[str, ...]
    positions: tuple[int, ...]
    outcomes: tuple[str | None, ...]
    model_version: str | None = None
    complete: bool = True

    def __post_init__(self) -> None:
        if not len(self.items) == len(self.positions) == len(self.outcomes):
            raise ValueError(f"served list {self.key}: {len(self.items)} items, {len(self.positions)} positions and "
                             f"{len(self.outcomes)} outcomes must be as many")
        bad = [o for o in self.outcomes if o is not None and o not in _RANK]
        if bad:
            raise ValueError(f"served list {self.key}: unknown outcome {bad[0]!r}; valid: {', '.join(OUTCOMES)}")

    @property
    def clicked(self) -> list[bool]:
        """Any outcome counts as a click for examination (a purchase needs the product to have been seen)."""
        return [o is not None for o in self.outcomes]


@dataclass
class ClickLog:
    lists: list[ServedList] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lists)

    def queries(self) -> list[str]:
        return list(dict.fromkeys(s.query for s in self.lists))

    def subset(self, queries: Iterable[str]) -> ClickLog:
        keep = set(queries)
        return ClickLog([s for s in self.lists if s.query in keep])

    def without(self, queries: Iterable[str]) -> ClickLog:
        drop = set(queries)
        return ClickLog([s for s in self.lists if s.query not in drop])

    def clicks(self) -> int:
        return sum(sum(s.clicked) for s in self.lists)

    def complete_share(self) -> float:
        return sum(s.complete for s in self.lists) / len(self.lists) if self.lists else 0.0

    def summary(self) -> dict[str, Any]:
        return {"lists": len(self.lists), "queries": len(self.queries()), "clicks": self.clicks(),
                "with_impressions": round(self.complete_share(), 3),
                "model_versions": sorted({s.model_version or "?" for s in self.lists})}


def _stronger(a: str | None, b: str) -> str:
    return b if a is None or _RANK[b] > _RANK[a] else a


def build_click_log(impressions: Iterable[Any], events: Iterable[Any]) -> ClickLog:
    """Served lists from impressions (objects with ``request_id``, ``surface``, ``query``, ``items``,
    ``positions``, ``model_version``) and events (``type``, ``item_id``, optional ``request_id``, ``query``,
    ``position``, ``session_id``, ``user_id``). Only search impressions with a query count."""
    outcome_events = [e for e in events if e.type in _RANK]
    by_request: dict[str, dict[str, str]] = {}
    loose: list[Any] = []
    for event in outcome_events:
        request_id = getattr(event, "request_id", None)
        if request_id:
            done = by_request.setdefault(request_id, {})
            done[event.item_id] = _stronger(done.get(event.item_id), event.type)
        else:
            loose.append(event)
    lists: list[ServedList] = []
    seen: set[str] = set()
    for imp in impressions:
        if getattr(imp, "surface", "search") != "search" or not imp.query or imp.request_id in seen:
            continue
        seen.add(imp.request_id)
        done = by_request.get(imp.request_id, {})
        lists.append(ServedList(imp.request_id, normalise_query(imp.query), tuple(imp.items), tuple(imp.positions),
                                tuple(done.get(pid) for pid in imp.items), getattr(imp, "model_version", None)))
    # events whose request id matched no impression fall back to their own query and position
    loose += [e for e in outcome_events if getattr(e, "request_id", None) and e.request_id not in seen]
    groups: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
    for event in loose:
        if not event.query or event.position is None:
            continue
        who = event.session_id or event.user_id
        group = groups.setdefault((who, normalise_query(event.query)), {})
        position, outcome = group.get(event.item_id, (event.position, None))
        group[event.item_id] = (min(position, event.position), _stronger(outcome, event.type))
    for (who, query), group in groups.items():
        ordered = sorted(group.items(), key=lambda kv: kv[1][0])
        lists.append(ServedList(f"events:{who}:{query}", query, tuple(pid for pid, _ in ordered),
                                tuple(p for _, (p, _) in ordered), tuple(o for _, (_, o) in ordered), None, False))
    return ClickLog(lists)


def load_click_log(store: Any, until: float | None = None) -> ClickLog:
    """The store's search click log: its impressions (where the store keeps them) joined with its events;
    ``until``: only what happened before this time (epoch seconds)."""
    events = [e for e in store.iter_events(types=list(OUTCOMES)) if until is None or e.timestamp < until]
    iter_impressions = getattr(store, "iter_impressions", None)
    impressions: Sequence[Any] = []
    if callable(iter_impressions):
        try:
            impressions = list(iter_impressions(until=until, surfaces=["search"]))
        except NotImplementedError:  # a store that keeps no impressions: events alone
            impressions = []
    return build_click_log(impressions, events)
