"""Read raw rows from JSONL, CSV or Parquet files, each with its line number.

A row comes out as ``(line, mapping)``; a row that cannot even be read (broken JSON)
comes out as ``(line, RecordError)`` so that the caller can report every bad row.

Text files are UTF-8 (with or without a byte-order mark) unless a UTF-16 mark says otherwise or
``encoding`` names another; bytes that do not decode refuse the file with its name and line
(:class:`EncodingError`). JSON's ``NaN`` / ``Infinity`` are read as :class:`~shoprank.data.records.JsonConstant`
so that the record's parser refuses them naming the field, as the HTTP API does.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shoprank.data.records import RecordError, json_constant

FORMATS = ("jsonl", "csv", "tsv", "parquet")
RawRow = tuple[int, "dict[str, Any] | RecordError"]


class EncodingError(ValueError):
    """A text file that does not decode with its encoding: names the file, the line and the byte."""


def _bom_encoding(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def text_lines(path: Path, encoding: str | None = None) -> Iterator[str]:
    """The file's lines as text (line endings kept), decoded one line at a time so that a byte that does not
    decode is reported with its line: UTF-8 (a leading byte-order mark dropped), UTF-16 when the file starts with
    its mark, or ``encoding``."""
    import codecs

    chosen = encoding or _bom_encoding(path)
    if chosen is not None:
        try:
            codecs.lookup(chosen)
        except LookupError:
            raise ValueError(f"unknown encoding {chosen!r}; e.g. utf-8, latin-1, cp1252, utf-16") from None
        if codecs.lookup(chosen).name.startswith("utf-16"):  # lines cannot be split on bytes: decode whole
            with path.open(encoding=chosen, newline="") as handle:
                yield from handle
            return
    name = chosen or "utf-8"
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 and chosen is None else name)
            except UnicodeDecodeError as exc:
                hint = "" if encoding else "; if the file has another encoding, pass it with --encoding (e.g. latin-1)"
                raise EncodingError(
                    f"{path}: line {line_no}: not {name} text (byte 0x{raw[exc.start]:02x} at column "
                    f"{len(raw[:exc.start].decode(name, errors='replace')) + 1}){hint}"
                ) from None
            yield text


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


def header_of(path: Path, fmt: str, encoding: str | None = None) -> list[str] | None:
    """Column names of a CSV/TSV/Parquet file; None for JSONL (each object has its own)."""
    if fmt in ("csv", "tsv"):
        lines = text_lines(path, encoding)
        try:
            return next(csv.reader(lines, delimiter="\t" if fmt == "tsv" else ","), [])
        finally:
            lines.close()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return None


def read_rows(path: str | Path, fmt: str | None = None, encoding: str | None = None) -> Iterator[RawRow]:
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        yield from _read_jsonl(path, encoding)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv(path, "\t" if fmt == "tsv" else ",", encoding)
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def _read_jsonl(path: Path, encoding: str | None) -> Iterator[RawRow]:
    lines = text_lines(path, encoding)
    try:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_constant=json_constant)
            except json.JSONDecodeError as exc:
                yield line_no, RecordError("<json>", f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield line_no, RecordError("<json>", "each line must be a JSON object")
                continue
            yield line_no, value
    finally:
        lines.close()


def _read_csv(path: Path, delimiter: str, encoding: str | None) -> Iterator[RawRow]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    lines = text_lines(path, encoding)
    try:
        reader = csv.reader(lines, delimiter=delimiter)
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
    finally:
        lines.close()


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    row_no = 0
    for batch in table.iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row
