"""A shop's search settings, stored as JSON in the shop setting ``"search"`` (``shoprank.rerank`` keeps the
re-ranking ones under ``"rerank"``). Set them with ``shoprank settings search`` or
``PUT /shops/{shop}/settings/search``; read them with either (no option / ``GET``).

``closest_on_empty``: when a query matches nothing, answer (apart from the empty ``hits`` and ``total: 0``)
this many products closest to it in meaning, under ``"closest"``, each marked as not matching. 0 (the
default): none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

SETTING_KEY = "search"
FORMAT_VERSION = 1
MAX_CLOSEST = 50


class SettingError(ValueError):
    """A search setting that cannot be stored; ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SearchSettings:
    closest_on_empty: int = 0  # products closest in meaning shown, marked, for a query nothing matches

    def __post_init__(self) -> None:
        if isinstance(self.closest_on_empty, bool) or not isinstance(self.closest_on_empty, int) or \
                not 0 <= self.closest_on_empty <= MAX_CLOSEST:
            raise SettingError(f"closest_on_empty must be a whole number from 0 (off) to {MAX_CLOSEST}, "
                               f"got {self.closest_on_empty!r}", "closest_on_empty")

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SearchSettings:
        return cls().updated(raw)

    def updated(self, changes: Mapping[str, Any]) -> SearchSettings:
        """These settings with ``changes`` (name -> value) applied; the others keep their values. Raises
        :class:`SettingError` naming the first bad or unknown setting."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names - {"version"})
        if unknown:
            raise SettingError(f"unknown search setting {unknown[0]!r}; valid names: {', '.join(sorted(names))}",
                               unknown[0])
        if changes.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise SettingError(f"search settings format {changes.get('version')!r} is not supported; "
                               f"this reads {FORMAT_VERSION}", "version")
        return replace(self, **{k: v for k, v in changes.items() if k != "version"})


def load_search_settings(store: Any) -> SearchSettings:
    """The shop's search settings (the defaults when none are stored, or when the stored ones are refused)."""
    raw = store.get_setting(SETTING_KEY) if store is not None else None
    if not isinstance(raw, Mapping):
        return SearchSettings()
    try:
        return SearchSettings.from_dict(raw)
    except (TypeError, ValueError):
        return SearchSettings()


def save_search_settings(store: Any, settings: SearchSettings) -> None:
    store.set_setting(SETTING_KEY, settings.to_dict())
