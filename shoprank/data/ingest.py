"""Validate and store records in batches that are applied whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprank.data.readers import apply_mapping, detect_format, header_of, read_rows
from shoprank.data.records import PARSERS, Event, Judgment, Product, RecordError, Review
from shoprank.store.base import Store, WriteResult

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "products": ("id", "title"),
    "events": ("user_id", "item_id", "type", "timestamp"),
    "judgments": ("query", "product_id", "grade"),
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
    flagged: int = 0  # reviews stored for a product the shop does not know (yet)

    def summary(self) -> dict[str, Any]:
        extra = {"flagged": self.flagged} if self.kind == "reviews" else {}
        return {
            "kind": self.kind,
            "read": self.read,
            "stored": self.stored,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            **extra,
        }


def check_kind(kind: str) -> str:
    if kind not in PARSERS:
        raise ValueError(f"unknown record kind {kind!r}; valid kinds: {', '.join(PARSERS)}")
    return kind


def parse_records(
    kind: str, rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]]
) -> tuple[list[Any], list[RecordError], int]:
    """Parse numbered raw rows; returns (records, errors with line numbers, rows read)."""
    parser: Callable[[Mapping[str, Any]], Any] = PARSERS[check_kind(kind)]
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
    return records, errors, read


def write_records(store: Store, kind: str, records: Sequence[Any]) -> WriteResult:
    if kind == "products":
        return store.upsert_products(records)
    if kind == "events":
        return store.append_events(records)
    if kind == "reviews":
        return store.upsert_reviews(records)
    return store.upsert_judgments(records)


def ingest_rows(
    store: Store,
    kind: str,
    rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]],
    *,
    skip_invalid: bool = False,
) -> IngestReport:
    """Validate every row, then store the batch in one transaction.

    By default any bad row refuses the whole batch (:class:`IngestError`); with
    ``skip_invalid`` the valid rows are stored and the bad ones reported.
    """
    records, errors, read = parse_records(kind, rows)
    if errors and not skip_invalid:
        raise IngestError(errors, read)
    result = write_records(store, kind, records)
    return IngestReport(
        kind=kind,
        read=read,
        stored=result.stored,
        updated=result.updated,
        duplicates=result.duplicates,
        rejected=len(errors),
        errors=errors,
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
) -> IngestReport:
    path = Path(path)
    check_kind(kind)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = fmt or detect_format(path)
    mapping = dict(mapping or {})
    check_columns(kind, header_of(path, fmt), mapping)
    rows: Iterable[tuple[int, Any]] = (
        (line, raw if isinstance(raw, RecordError) else apply_mapping(raw, mapping))
        for line, raw in read_rows(path, fmt)
    )
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc=f"reading {path.name}", unit=" rows", mininterval=0.5)
    report = ingest_rows(store, kind, rows, skip_invalid=skip_invalid)
    if rejects_path is not None and report.errors:
        with Path(rejects_path).open("w", encoding="utf-8") as handle:
            for error in report.errors:
                handle.write(
                    json.dumps({"line": error.line, "field": error.field, "error": error.message})
                    + "\n"
                )
    return report


RECORD_TYPES = {"products": Product, "events": Event, "judgments": Judgment, "reviews": Review}
