"""Small helpers shared by the re-ranking stages: fresh copies and reasons."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shoprank.results import ScoredItem


def fresh(items: Iterable[ScoredItem]) -> list[ScoredItem]:
    """Copies of ``items`` whose parts and reasons can be changed without touching the caller's."""
    return [ScoredItem(item.id, item.score, dict(item.parts), list(item.reasons)) for item in items]


def add_reason(item: ScoredItem, reason: str) -> None:
    if reason not in item.reasons:
        item.reasons.append(reason)


def mark_moved_up(before: Sequence[str], after: Sequence[ScoredItem], reason: str, page_size: int) -> None:
    """Give ``reason`` to every item of ``after`` that now sits on an earlier page than in ``before``."""
    page_of = {item_id: i // page_size for i, item_id in enumerate(before)}
    for i, item in enumerate(after):
        if i // page_size < page_of.get(item.id, -1):
            add_reason(item, reason)


def check_unique(items: Sequence[ScoredItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"item {item.id!r} appears twice; a re-ranker needs each id once")
        seen.add(item.id)
