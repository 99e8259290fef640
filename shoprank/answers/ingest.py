"""Reading a shop's FAQ and past conversations from files, validated whole before anything is stored.

FAQ files: JSONL, one entry a line (``{"id", "answer", "questions": [...], "search"?}``), or CSV/TSV rows
``id,question,answer`` (one row per example question; the rows of an id are one entry, the answer given on
any of them, the same wherever it is repeated). Conversations: JSONL or CSV ``question,faq_id`` (an empty
``faq_id``: no entry answered it). A bad row refuses the whole file with every error by line and field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shoprank.answers.records import Conversation, FaqEntry, parse_conversation, parse_faq_entry
from shoprank.data.ingest import IngestError, parse_rows
from shoprank.data.readers import detect_format, header_of, read_rows
from shoprank.data.records import RecordError
from shoprank.store.base import Store, WriteResult

CSV_COLUMNS = ("id", "question", "answer")


def parse_faq_rows(rows: Iterable[tuple[int, Mapping[str, Any] | RecordError]], *, grouped: bool
                   ) -> tuple[list[FaqEntry], list[RecordError], int]:
    """(entries, errors, rows read). ``grouped``: one row per question (CSV), else one row per entry."""
    if not grouped:
        lines: list[int] = []
        parsed, errors, read = parse_rows(parse_faq_entry, rows, lines=lines)
        entries: list[FaqEntry] = []
        first: dict[str, int] = {}
        for entry, line in zip(parsed, lines, strict=True):
            if entry.id in first:
                errors.append(RecordError("id", f"duplicate id {entry.id[:100]!r} (first on line {first[entry.id]})",
                                          line))
                continue
            first[entry.id] = line
            entries.append(entry)
        return entries, sorted(errors, key=lambda e: e.line or 0), read
    errors = []
    read = 0
    groups: dict[str, dict[str, Any]] = {}
    for line, raw in rows:
        read += 1
        if isinstance(raw, RecordError):
            errors.append(raw.at_line(line))
            continue
        try:
            probe = parse_faq_entry({"id": raw.get("id"), "answer": raw.get("answer") or "-",
                                     "questions": [raw.get("question")], "search": raw.get("search")})
        except RecordError as exc:
            field = "question" if exc.field.startswith("questions") else exc.field
            errors.append(RecordError(field, exc.message, line))
            continue
        group = groups.setdefault(probe.id, {"line": line, "answer": None, "answer_line": None, "questions": [],
                                             "search": probe.search})
        group["questions"].extend(probe.questions)
        answer = (raw.get("answer") or "").strip()
        if answer:
            if group["answer"] is None:
                group["answer"], group["answer_line"] = raw.get("answer"), line
            elif answer != str(group["answer"]).strip():
                errors.append(RecordError("answer", f"differs from the answer of entry {probe.id[:100]!r} on line "
                                          f"{group['answer_line']}; give one answer per id", line))
    entries = []
    for entry_id, group in groups.items():
        if group["answer"] is None:
            errors.append(RecordError("answer", f"entry {entry_id[:100]!r} has no answer on any of its rows",
                                      group["line"]))
            continue
        try:
            entries.append(parse_faq_entry({"id": entry_id, "answer": group["answer"],
                                            "questions": group["questions"], "search": group["search"]}))
        except RecordError as exc:
            errors.append(exc.at_line(group["line"]))
    return entries, errors, read


def read_faq(path: str | Path, fmt: str | None = None) -> list[FaqEntry]:
    """Every entry of an FAQ file, or :class:`IngestError` naming each bad line and field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        raise ValueError("an FAQ file is JSONL or CSV/TSV (id,question,answer)")
    header = header_of(path, fmt)
    if header is not None:
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise IngestError([RecordError(c, f"column is missing (columns found: {', '.join(header)}); an FAQ "
                                           "CSV has the columns id,question,answer", line=1) for c in missing])
    entries, errors, read = parse_faq_rows(read_rows(path, fmt), grouped=header is not None)
    if errors:
        raise IngestError(errors, read)
    if not entries:
        raise IngestError([RecordError("id", "the file holds no FAQ entry", line=1)], read)
    return entries


def read_conversations(path: str | Path, known: Sequence[str], fmt: str | None = None) -> list[Conversation]:
    """Past conversations; an ``faq_id`` not in ``known`` (the shop's FAQ) is an error at its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = fmt or detect_format(path)
    header = header_of(path, fmt)
    if header is not None and "question" not in header:
        raise IngestError([RecordError("question", f"column is missing (columns found: {', '.join(header)}); a "
                                       "conversations CSV has the columns question,faq_id", line=1)])
    ids = set(known)
    lines: list[int] = []
    parsed, errors, read = parse_rows(parse_conversation, read_rows(path, fmt), lines=lines)
    out: list[Conversation] = []
    for conversation, line in zip(parsed, lines, strict=True):
        if conversation.faq_id is not None and conversation.faq_id not in ids:
            errors.append(RecordError("faq_id", f"unknown FAQ entry {conversation.faq_id[:100]!r}; ingest the FAQ "
                                      "first (or leave faq_id empty for a question no entry answered)", line))
            continue
        out.append(conversation)
    if errors:
        raise IngestError(sorted(errors, key=lambda e: e.line or 0), read)
    return out


def ingest_faq(store: Store, path: str | Path, *, replace: bool = True, fmt: str | None = None) -> WriteResult:
    """Validate the whole file, then store it in one transaction (the FAQ becomes the file's entries unless
    ``replace`` is False, when they are merged in by id)."""
    return store.put_faq(read_faq(path, fmt), replace=replace)


def ingest_conversations(store: Store, path: str | Path, fmt: str | None = None) -> WriteResult:
    return store.append_conversations(read_conversations(path, [e.id for e in store.faq_entries()], fmt))
