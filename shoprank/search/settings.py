"""A shop's search settings, stored as JSON in the shop setting ``"search"`` (``shoprank.rerank`` keeps the
re-ranking ones under ``"rerank"``).

``closest_on_empty``: when a query matches nothing, answer (apart from the empty ``hits`` and ``total: 0``)
this many products closest to it in meaning, under ``"closest"``, each marked as not matching. 0 (the
default): none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

SETTING_KEY = "search"
FORMAT_VERSION = 1
MAX_CLOSEST = 50


@dataclass(frozen=True)
class SearchSettings:
    closest_on_empty: int = 0  # products closest in meaning shown, marked, for a query nothing matches

    def __post_init__(self) -> None:
        if isinstance(self.closest_on_empty, bool) or not isinstance(self.closest_on_empty, int) or \
                not 0 <= self.closest_on_empty <= MAX_CLOSEST:
            raise ValueError(f"closest_on_empty must be a whole number from 0 (off) to {MAX_CLOSEST}, "
                             f"got {self.closest_on_empty!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SearchSettings:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names - {"version"})
        if unknown:
            raise ValueError(f"unknown search setting {unknown[0]!r}; valid names: {', '.join(sorted(names))}")
        if raw.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"search settings format {raw.get('version')!r} is not supported; "
                             f"this reads {FORMAT_VERSION}")
        return cls(**{k: v for k, v in raw.items() if k != "version"})


def load_search_settings(store: Any) -> SearchSettings:
    """The shop's search settings (the defaults when none are stored, or when the stored ones are refused)."""
    raw = store.get_setting(SETTING_KEY) if store is not None else None
    if raw is None:
        return SearchSettings()
    try:
        return SearchSettings.from_dict(raw)
    except (TypeError, ValueError):
        return SearchSettings()


def save_search_settings(store: Any, settings: SearchSettings) -> None:
    store.set_setting(SETTING_KEY, settings.to_dict())
