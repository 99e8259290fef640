"""Read raw rows from JSONL, CSV or Parquet files, each with its line number.

A row comes out as ``(line, mapping)``; a row that cannot even be read (broken JSON)
comes out as ``(line, RecordError)`` so that the caller can report every bad row.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shoprank.data.records import RecordError

FORMATS = ("jsonl", "csv", "tsv", "parquet")
RawRow = tuple[int, "dict[str, Any] | RecordError"]


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        name = suffix.lstrip(".")
        if name in ("jsonl", "ndjson", "json"):
            return "jsonl"
        if name in FORMATS:
            return name
    raise ValueError(
        f"cannot tell the format of {path.name}: name it .jsonl, .csv, .tsv or .parquet, "
        "or pass --format"
    )


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["title=product_title", ...]`` -> ``{"title": "product_title"}`` (field <- column)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ValueError(f"--map expects FIELD=COLUMN, got {pair!r}")
        mapping[field.strip()] = column.strip()
    return mapping


def apply_mapping(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    if not mapping:
        return dict(row)
    renamed = {column: field for field, column in mapping.items()}
    return {renamed.get(key, key): value for key, value in row.items()}


def header_of(path: Path, fmt: str) -> list[str] | None:
    """Column names of a CSV/TSV/Parquet file; None for JSONL (each object has its own)."""
    if fmt in ("csv", "tsv"):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",")
            return next(reader, [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return None


def read_rows(path: str | Path, fmt: str | None = None) -> Iterator[RawRow]:
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        yield from _read_jsonl(path)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv(path, "\t" if fmt == "tsv" else ",")
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, RecordError("<json>", f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield line_no, RecordError("<json>", "each line must be a JSON object")
                continue
            yield line_no, value


def _read_csv(path: Path, delimiter: str) -> Iterator[RawRow]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        line_no = reader.line_num
        for values in reader:
            line_no = reader.line_num
            if not values:
                continue
            if len(values) != width:
                yield line_no, RecordError(
                    "<csv>", f"has {len(values)} columns; the header has {width}"
                )
                continue
            yield line_no, dict(zip(header, values, strict=True))


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    row_no = 0
    for batch in table.iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row
