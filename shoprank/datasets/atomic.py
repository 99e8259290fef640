"""RecBole / UniSRec atomic files: ``.inter``, ``.item`` or ``.text``, ``.item2index``.

Sequences in ``item_id_list`` files carry no times: each user's items become purchase
events with increasing synthetic timestamps (one hour apart, from 2020-01-01 UTC) that
keep the order. Files with a ``timestamp`` column keep their own times.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprank.datasets.base import DatasetRows

SYNTHETIC_START = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
SYNTHETIC_STEP = 3600.0


def _field(name: str) -> str:
    return name.split(":", 1)[0]


def _read_atomic(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [_field(h) for h in next(reader)]
        return header, [(reader.line_num, row) for row in reader if row]


TITLE_FIELDS = ("title", "text", "name")
CATEGORY_FIELDS = ("categories", "category", "class", "genre", "genres")


def _pop_first(rec: dict[str, str], names: tuple[str, ...]) -> str:
    """The first non-empty of ``names`` (all of them removed from ``rec``)."""
    found = ""
    for name in names:
        value = rec.pop(name, "")
        found = found or value
    return found


def load_items(path: Path, index_path: Path | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Products from a ``.item`` (``item_id``, ``title``...) or ``.text`` (``item_id``, ``text``) file.

    RecBole's own sets name the title differently (``movie_title`` in ml-100k): the first of ``title``,
    ``text``, ``name`` or any ``*_title`` / ``*_name`` field is the title; ``class`` or ``genre`` the category.
    """
    header, rows = _read_atomic(path)
    index: dict[str, str] = {}
    if index_path is not None:
        _, pairs = _read_atomic(index_path)
        index = {row[1]: row[0] for row in pairs}  # internal index -> original id
    products = []
    for line, row in rows:
        rec = dict(zip(header, row, strict=False))
        item = rec.pop("item_id")
        title = _pop_first(rec, TITLE_FIELDS) or next(
            (rec.pop(k) for k in list(rec) if k.endswith(("_title", "_name")) and rec[k]), "")
        category = _pop_first(rec, CATEGORY_FIELDS)
        brand = rec.pop("brand", "")
        product = {"id": index.get(item, item), "title": title, "category": category, "brand": brand}
        product.update({k: v for k, v in rec.items() if v})
        products.append((line, product))
    return products


def load_sequences(path: Path, *, event_type: str = "purchase") -> list[tuple[int, dict[str, Any]]]:
    """Events from an ``.inter`` file: either ``item_id_list`` + ``item_id`` or one row per event."""
    header, rows = _read_atomic(path)
    events = []
    if "item_id_list" in header:
        for line, row in rows:
            rec = dict(zip(header, row, strict=False))
            items = rec["item_id_list"].split() + ([rec["item_id"]] if rec.get("item_id") else [])
            user = rec["user_id"]
            for position, item in enumerate(items):
                events.append((line, {
                    "event_id": f"{user}:{position}", "user_id": user, "item_id": item,
                    "type": event_type, "timestamp": SYNTHETIC_START + position * SYNTHETIC_STEP,
                }))
        return events
    for line, row in rows:
        rec = dict(zip(header, row, strict=False))
        timestamp = rec.get("timestamp") or SYNTHETIC_START + line * SYNTHETIC_STEP
        events.append((line, {
            "user_id": rec["user_id"], "item_id": rec["item_id"],
            "type": "rating" if "rating" in rec else event_type,
            "value": rec.get("rating"), "timestamp": timestamp,
        }))
    return events


def load(inter: Path, items: Path | None = None, item2index: Path | None = None) -> DatasetRows:
    rows = DatasetRows()
    if items is not None:
        rows.products = load_items(items, item2index)
    rows.events = load_sequences(inter)
    return rows
