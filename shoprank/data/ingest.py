"""Validate and store records in batches that are applied whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprank.data.attribution import AttributionReport, attribute
from shoprank.data.impressions import Impression, parse_impression
from shoprank.data.readers import apply_mapping, detect_format, header_of, read_rows
from shoprank.data.records import PARSERS as RECORD_PARSERS
from shoprank.data.records import Event, Judgment, Product, RecordError, Review, product_fields, unknown_product
from shoprank.data.upsert import ProductUpdate, resolve
from shoprank.store.base import Store, WriteResult

PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {**RECORD_PARSERS, "impressions": parse_impression}
"""Record kind -> parser: the kinds ``shoprank ingest`` takes."""

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "products": ("id", "title"),
    "events": ("user_id", "item_id", "type", "timestamp"),
    "judgments": ("query", "product_id", "grade"),
    "impressions": ("request_id", "timestamp", "surface", "items"),
    "reviews": ("review_id", "product_id", "text", "timestamp"),
}


class IngestError(ValueError):
    """A batch was refused; ``errors`` holds every bad row. Nothing was stored."""

    def __init__(self, errors: Sequence[RecordError], read: int = 0) -> None:
        self.errors = list(errors)
        self.read = read
        shown = "\n".join(f"  {e}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(
            f"{len(self.errors)} bad row(s) of {read}; nothing was stored:\n{shown}{more}"
        )


@dataclass
class IngestReport:
    kind: str
    read: int = 0
    stored: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)
    attribution: AttributionReport | None = None
    """Events only: how many carried a request id that matched one of the shop's impressions."""
    flagged: int = 0  # reviews stored for a product the shop does not know (yet)

    def summary(self) -> dict[str, Any]:
        extra = {"flagged": self.flagged} if self.kind == "reviews" else {}
        out = {
            "kind": self.kind,
            "read": self.read,
            "stored": self.stored,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            **extra,
        }
        if self.attribution is not None:
            out["attribution"] = self.attribution.to_dict()
        return out


def check_kind(kind: str) -> str:
    if kind not in PARSERS:
        raise ValueError(f"unknown record kind {kind!r}; valid kinds: {', '.join(PARSERS)}")
    return kind


def parse_records(
    kind: str, rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]], *, updates: bool = False,
    lines: list[int] | None = None,
) -> tuple[list[Any], list[RecordError], int]:
    """Parse numbered raw rows; returns (records, errors with line numbers, rows read).

    ``updates``: products come as :class:`ProductUpdate` (with the fields each row sets, for merging).
    ``lines``: filled with each record's line."""
    parser: Callable[[Mapping[str, Any]], Any] = PARSERS[check_kind(kind)]
    if updates and kind == "products":
        product = parser

        def parser(raw: Mapping[str, Any]) -> ProductUpdate:
            return ProductUpdate(product(raw), product_fields(raw))

    return parse_rows(parser, rows, lines=lines)


def parse_rows(
    parser: Callable[[Mapping[str, Any]], Any], rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]], *,
    lines: list[int] | None = None,
) -> tuple[list[Any], list[RecordError], int]:
    """The row loop of every reader (records, FAQ entries, conversations): ``parser`` on each numbered raw row;
    returns (records, errors with line numbers, rows read). A row the reader could not decode arrives as a
    :class:`RecordError`. ``lines``: filled with each record's line."""
    records: list[Any] = []
    errors: list[RecordError] = []
    read = 0
    for line, raw in rows:
        read += 1
        if isinstance(raw, RecordError):
            errors.append(raw.at_line(line))
            continue
        try:
            records.append(parser(raw))
        except RecordError as exc:
            errors.append(exc.at_line(line))
            continue
        if lines is not None:
            lines.append(line)
    return records, errors, read


def unknown_items(store: Store, events: Sequence[Event]) -> list[int]:
    """Positions of the events whose product the store does not hold."""
    ids = list(dict.fromkeys(e.item_id for e in events))
    known = {p.id for p in store.get_products(ids) if p is not None} if ids else set()
    return [i for i, e in enumerate(events) if e.item_id not in known]


def write_records(store: Store, kind: str, records: Sequence[Any]) -> WriteResult:
    if kind == "products":
        return store.upsert_products(records)
    if kind == "events":
        return store.append_events(records)
    if kind == "impressions":
        return store.append_impressions(records)
    if kind == "reviews":
        return store.upsert_reviews(records)
    return store.upsert_judgments(records)


def ingest_rows(
    store: Store,
    kind: str,
    rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]],
    *,
    skip_invalid: bool = False,
    replace: bool = False,
    check_items: bool = False,
) -> IngestReport:
    """Validate every row, then store the batch in one transaction.

    By default any bad row refuses the whole batch (:class:`IngestError`); with
    ``skip_invalid`` the valid rows are stored and the bad ones reported. Products merge into the
    stored ones (:mod:`shoprank.data.upsert`) unless ``replace``. ``check_items``: an event whose
    product the store lacks is a bad row (what ``shoprank ingest`` and the HTTP API do).
    """
    lines: list[int] = []
    records, errors, read = parse_records(kind, rows, updates=True, lines=lines)
    if check_items and kind == "events" and records:
        unknown = unknown_items(store, records)
        if unknown:
            errors += [unknown_product(records[i].item_id).at_line(lines[i]) for i in unknown]
            errors.sort(key=lambda e: e.line or 0)
            gone = set(unknown)
            records = [r for i, r in enumerate(records) if i not in gone]
    if errors and not skip_invalid:
        raise IngestError(errors, read)
    if kind == "products":
        records = resolve(store, records, replace=replace)
    attribution = None
    if kind == "events":  # events carrying a request id are tied to the shop's stored impressions
        records, attribution = attribute(records, store.get_impressions)
    result = write_records(store, kind, records)
    return IngestReport(
        kind=kind,
        read=read,
        stored=result.stored,
        updated=result.updated,
        duplicates=result.duplicates,
        rejected=len(errors),
        errors=errors,
        attribution=attribution,
        flagged=result.flagged,
    )


def check_columns(kind: str, columns: Sequence[str] | None, mapping: Mapping[str, str]) -> None:
    """Refuse a file that lacks a required column before reading any row."""
    if columns is None:
        return
    renamed = set(apply_mapping(dict.fromkeys(columns), mapping))
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in renamed]
    if missing:
        raise IngestError(
            [
                RecordError(
                    f, f"column is missing (columns found: {', '.join(columns)}); "
                    f"map one with --map {f}=COLUMN", line=1,
                )
                for f in missing
            ]
        )


def ingest_file(
    store: Store,
    kind: str,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    progress: bool = False,
    encoding: str | None = None,
    replace: bool = False,
    check_items: bool = False,
) -> IngestReport:
    """Read, validate and store one file (see :func:`ingest_rows`); ``encoding`` as in
    :func:`shoprank.data.readers.text_lines` (UTF-8 by default)."""
    path = Path(path)
    check_kind(kind)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = fmt or detect_format(path)
    mapping = dict(mapping or {})
    check_columns(kind, header_of(path, fmt, encoding), mapping)
    rows: Iterable[tuple[int, Any]] = (
        (line, raw if isinstance(raw, RecordError) else apply_mapping(raw, mapping))
        for line, raw in read_rows(path, fmt, encoding)
    )
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc=f"reading {path.name}", unit=" rows", mininterval=0.5)
    report = ingest_rows(store, kind, rows, skip_invalid=skip_invalid, replace=replace, check_items=check_items)
    if rejects_path is not None and report.errors:
        with Path(rejects_path).open("w", encoding="utf-8") as handle:
            for error in report.errors:
                handle.write(
                    json.dumps({"line": error.line, "field": error.field, "error": error.message})
                    + "\n"
                )
    return report


RECORD_TYPES = {"products": Product, "events": Event, "judgments": Judgment, "impressions": Impression,
                "reviews": Review}
