"""What became of each answer: an impression with the clicks, carts and purchases attributed to it.

Every store reads these in one pass (``Store.impression_outcomes``) for analytics and experiment reports;
the grouping of attributed events under their impression is done here, once, for every store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shoprank.data.impressions import Impression


@dataclass(frozen=True)
class Outcome:
    """One answer as shown and what the shopper did with it. ``events`` holds (type, item_id, position,
    timestamp) of the attributed events, in time order."""

    impression: Impression
    events: tuple[tuple[str, str, int | None, float], ...] = ()

    def count(self, event_type: str) -> int:
        return sum(1 for e in self.events if e[0] == event_type)

    def did(self, event_type: str) -> bool:
        return any(e[0] == event_type for e in self.events)

    def clicked_positions(self) -> list[int]:
        """Distinct positions clicked, in the order first clicked."""
        return list(dict.fromkeys(e[2] for e in self.events if e[0] == "click" and e[2] is not None))

    def clicked_items(self) -> list[str]:
        return list(dict.fromkeys(e[1] for e in self.events if e[0] == "click"))


def join_outcomes(impressions: Iterable[Impression],
                  events: Iterable[tuple[str, str, str, int | None, float]]) -> Iterator[Outcome]:
    """``impressions`` in their order, each with its ``events`` rows (request_id, type, item_id, position,
    timestamp); events of impressions not listed are ignored."""
    by_request: dict[str, list[tuple[str, str, int | None, float]]] = {}
    for request_id, type_, item_id, position, timestamp in events:
        by_request.setdefault(request_id, []).append((type_, item_id, position, float(timestamp)))
    for impression in impressions:
        found = by_request.get(impression.request_id, ())
        yield Outcome(impression, tuple(sorted(found, key=lambda e: e[3])))
