"""Impressions: what one answer showed, so that later clicks, carts and purchases can be tied to it.

The server records one for every search, recommendations, similar-items and bought-together answer; shops
that already have such logs ingest them from files (``shoprank ingest impressions FILE --shop S``).

An impression lists the shown product ids with their positions in the whole ranked list: 0 is the first
result of the first page, so the third result of page 2 at 10 per page is position 12.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoprank.data.limits import LIMITS
from shoprank.data.records import RecordError, _identifier, _missing, _number, _text, parse_timestamp

SURFACES: tuple[str, ...] = ("search", "recommendations", "similar", "bought_together")
"""Where an answer was shown: the four read endpoints."""

MAX_SHOWN = 1_000
"""Most products one impression may list (the API answers at most 100 per page)."""


@dataclass(frozen=True)
class Impression:
    """One answer as it was shown.

    ``items[i]`` was shown at ``positions[i]``; ``query`` is the normalised query (search only), ``item_id``
    the product the answer was about (similar, bought together), ``user_id`` the shopper when known.
    """

    request_id: str
    timestamp: float
    surface: str
    items: tuple[str, ...]
    positions: tuple[int, ...]
    user_id: str | None = None
    query: str | None = None
    item_id: str | None = None
    model_version: str | None = None
    page: int = 1
    total: int | None = None
    """How many products matched (search), so zero- and low-result queries can be told apart."""
    latency_ms: float | None = None
    experiment: str | None = None
    """The experiment this answer was part of, and the ``variant`` it showed."""
    variant: str | None = None
    teams: tuple[str, ...] | None = None
    """Interleaving: the variant that contributed each shown item (``teams[i]`` for ``items[i]``)."""

    def __post_init__(self) -> None:
        if len(self.items) != len(self.positions):
            raise ValueError(f"impression {self.request_id}: {len(self.items)} items but "
                             f"{len(self.positions)} positions")
        if self.teams is not None and len(self.teams) != len(self.items):
            raise ValueError(f"impression {self.request_id}: {len(self.items)} items but {len(self.teams)} teams")

    def position_of(self, product_id: str) -> int | None:
        """Where ``product_id`` was shown (its first place), or None if it was not."""
        for item, position in zip(self.items, self.positions, strict=True):
            if item == product_id:
                return position
        return None

    def to_dict(self) -> dict[str, Any]:
        out = {"request_id": self.request_id, "timestamp": self.timestamp, "surface": self.surface,
               "items": list(self.items), "positions": list(self.positions), "user_id": self.user_id,
               "query": self.query, "item_id": self.item_id, "model_version": self.model_version,
               "page": self.page}
        for name, value in self.meta().items():  # only when recorded: older logs have none
            if value is not None:
                out[name] = list(value) if name == "teams" else value
        return out

    def meta(self) -> dict[str, Any]:
        """The answer's facts beyond what was shown (stored beside the impression)."""
        return {"total": self.total, "latency_ms": self.latency_ms, "experiment": self.experiment,
                "variant": self.variant, "teams": self.teams}

    @property
    def has_meta(self) -> bool:
        return any(v is not None for v in self.meta().values())


def _id_list(raw: Mapping[str, Any], name: str) -> list[Any]:
    value = raw.get(name)
    if isinstance(value, str):  # CSV: a JSON list, or ids separated by '|'
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise RecordError(name, "must be a JSON list") from None
        else:
            value = [part for part in text.split("|") if part.strip()]
    elif value is not None and not isinstance(value, list | tuple):
        try:  # Parquet/Arrow list columns arrive as numpy arrays
            value = list(value)
        except TypeError:
            raise RecordError(name, f"must be a list, got {type(value).__name__}") from None
    return list(value or [])


def parse_impression(raw: Mapping[str, Any]) -> Impression:
    """A raw mapping (JSON object, CSV row) -> an :class:`Impression`, or :class:`RecordError` naming the field.

    ``items`` is a list of product ids (in CSV a JSON list or ``a|b|c``); ``positions`` defaults to
    ``offset, offset + 1, ...`` with ``offset`` default ``(page - 1) * len(items)``."""
    request_id = _identifier(raw, "request_id")
    if _missing(raw.get("timestamp")):
        raise RecordError("timestamp", "is required")
    timestamp = parse_timestamp(raw["timestamp"])
    surface = _text(raw, "surface", 32, required=True).lower().replace("-", "_")
    if surface not in SURFACES:
        raise RecordError("surface", f"must be one of {', '.join(SURFACES)}; got {surface[:40]!r}")
    values = _id_list(raw, "items")
    if not values:
        raise RecordError("items", "must list at least one shown product id")
    if len(values) > MAX_SHOWN:
        raise RecordError("items", f"lists {len(values)} products; the limit is {MAX_SHOWN}")
    items = []
    for i, value in enumerate(values):
        try:
            items.append(_identifier({"id": value}, "id"))
        except RecordError as exc:
            raise RecordError(f"items[{i}]", exc.message) from None
    page_value = _number(raw, "page")
    if page_value is not None and (not page_value.is_integer() or page_value < 1):
        raise RecordError("page", "must be a whole number from 1")
    page = 1 if page_value is None else int(page_value)
    positions = _positions(raw, len(items), page)
    return Impression(
        request_id=request_id, timestamp=timestamp, surface=surface, items=tuple(items), positions=positions,
        user_id=_identifier(raw, "user_id", required=False) or None,
        query=_text(raw, "query", LIMITS.max_query_chars) or None,
        item_id=_identifier(raw, "item_id", required=False) or None,
        model_version=_text(raw, "model_version", 256) or None,
        page=page,
    )


def _positions(raw: Mapping[str, Any], n: int, page: int) -> tuple[int, ...]:
    given = raw.get("positions")
    if not isinstance(given, list | tuple) and _missing(given):
        offset = _number(raw, "offset")
        if offset is not None and (not offset.is_integer() or not 0 <= offset <= LIMITS.max_position):
            raise RecordError("offset", f"must be a whole number from 0 to {LIMITS.max_position}")
        start = (page - 1) * n if offset is None else int(offset)
        if start + n - 1 > LIMITS.max_position:
            raise RecordError("offset", f"puts positions past {LIMITS.max_position}")
        return tuple(range(start, start + n))
    values = _id_list(raw, "positions")
    if len(values) != n:
        raise RecordError("positions", f"has {len(values)} entries for {n} items")
    out = []
    for i, value in enumerate(values):
        number = _number({"p": value}, "p")
        if number is None or not number.is_integer() or not 0 <= number <= LIMITS.max_position:
            raise RecordError(f"positions[{i}]", f"must be a whole number from 0 to {LIMITS.max_position}")
        out.append(int(number))
    if len(set(out)) != len(out):
        raise RecordError("positions", "repeats a position")
    return tuple(out)
