"""Tie clicks, carts and purchases to the answer they came from.

An event that carries a ``request_id`` is checked against that request's impression (of the same shop):

* the item must have been shown in it; the event's ``position`` is then the impression's position of the item,
  and its ``query`` the impression's query when the event has none;
* an event whose ``position`` disagrees with where the impression showed the item (a forged or stale position,
  one beyond the impression's list included) is **not** attributed;
* an unknown request id (never logged, expired, lost, or another shop's) is not attributed either.

An event that is not attributed is still stored, whole, as sent, only without ``request_id``; it is counted
under its reason. Nothing here raises: a bad request id never costs an event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shoprank.data.impressions import Impression
from shoprank.data.records import Event

ATTRIBUTED_TYPES: tuple[str, ...] = ("click", "add_to_cart", "purchase")
"""Event types tied to an impression; others (view, rating) keep no request id."""

REASONS: tuple[str, ...] = ("unknown_request", "item_not_shown", "position_beyond_list", "position_mismatch",
                            "type_not_attributed")
"""Why an event with a request id was stored unattributed."""

Lookup = Callable[[list[str]], dict[str, Impression]]
"""request ids -> the impressions found (a store's ``get_impressions``, possibly behind a cache)."""


@dataclass
class AttributionReport:
    attributed: int = 0
    unattributed: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.unattributed[reason] = self.unattributed.get(reason, 0) + 1

    def merge(self, other: AttributionReport) -> None:
        self.attributed += other.attributed
        for reason, n in other.unattributed.items():
            self.unattributed[reason] = self.unattributed.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"attributed": self.attributed, "unattributed": sum(self.unattributed.values()),
                "unattributed_by_reason": dict(sorted(self.unattributed.items()))}


def why_not(event: Event, impression: Impression | None) -> str | None:
    """The reason ``event`` cannot be attributed to ``impression`` (None: it can)."""
    if impression is None:
        return "unknown_request"
    if event.type not in ATTRIBUTED_TYPES:
        return "type_not_attributed"
    if not impression.items:  # an answer that found nothing (kept for analytics)
        return "item_not_shown"
    if event.position is not None and event.position > max(impression.positions):
        return "position_beyond_list"
    shown = impression.position_of(event.item_id)
    if shown is None:
        return "item_not_shown"
    if event.position is not None and event.position != shown:
        return "position_mismatch"
    return None


def attribute(events: Sequence[Event], lookup: Lookup) -> tuple[list[Event], AttributionReport]:
    """The events as they are to be stored (attributed ones with position and query filled from the
    impression; the others without ``request_id``) and what happened."""
    report = AttributionReport()
    wanted = list(dict.fromkeys(e.request_id for e in events if e.request_id))
    if not wanted:
        return list(events), report
    found = lookup(wanted)
    out: list[Event] = []
    for event in events:
        if not event.request_id:
            out.append(event)
            continue
        impression = found.get(event.request_id)
        reason = why_not(event, impression)
        if reason is not None:
            report.add(reason)
            out.append(replace(event, request_id=None))
            continue
        assert impression is not None
        report.attributed += 1
        out.append(replace(event, position=impression.position_of(event.item_id),
                           query=event.query if event.query else impression.query))
    return out, report
