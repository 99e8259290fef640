"""TREC run and qrels files, the exchange format of ``trec_eval`` and ``ir_measures``.

A run line is ``qid Q0 docid rank score tag`` and a qrels line ``qid 0 docid grade``,
fields separated by whitespace. Ids may not be empty or contain whitespace.

Scores are written with ``repr`` so they read back exactly. Note that ``trec_eval``
ignores the rank column and re-sorts by score (ties broken by docid), so two
documents with equal scores may be evaluated in a different order than written;
:func:`read_run` keeps the order of the rank column.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, float]]


def _check_id(value: object, what: str, line: int | None) -> str:
    text = str(value)
    if not text or any(ch.isspace() for ch in text):
        where = f"line {line}: " if line is not None else ""
        raise ValueError(f"{where}{what} {text!r} is empty or contains whitespace; TREC fields cannot")
    return text


def _finite(value: Any, what: str, line: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"line {line}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"line {line}: {what} must be finite, got {number}")
    return number


def _format_grade(grade: float) -> str:
    return str(int(grade)) if grade.is_integer() and abs(grade) < 2**53 else repr(grade)


def write_run(
    path: str | os.PathLike[str],
    run: Mapping[object, Sequence[tuple[object, float]]],
    tag: str = "shoprank",
) -> None:
    """Write ``run`` (qid -> [(docid, score), ...]) as a TREC run file.

    Queries are written in the mapping's order; each query's documents sorted by
    score descending (stable, so equal scores keep their input order), ranks from 1.
    Raises ValueError naming the line for bad ids, non-finite scores or a docid
    repeated within a query.
    """
    tag = _check_id(tag, "tag", None)
    lines: list[str] = []
    for qid, docs in run.items():
        seen: set[str] = set()
        ordered = sorted(docs, key=lambda pair: -_finite(pair[1], "score", len(lines) + 1))
        for rank, (docid, score) in enumerate(ordered, start=1):
            number = len(lines) + 1
            q = _check_id(qid, "qid", number)
            d = _check_id(docid, "docid", number)
            if d in seen:
                raise ValueError(f"line {number}: docid {d!r} appears twice for qid {q!r}")
            seen.add(d)
            lines.append(f"{q} Q0 {d} {rank} {_finite(score, 'score', number)!r} {tag}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def read_run(path: str | os.PathLike[str]) -> Run:
    """Read a TREC run file into qid -> [(docid, score), ...] ordered by the rank column.

    Raises ValueError naming the line for a malformed line or a repeated docid.
    """
    rows: dict[str, list[tuple[int, int, str, float]]] = {}
    seen: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError(f"line {number}: expected 'qid Q0 docid rank score tag', got {raw.strip()!r}")
            qid, _, docid, rank_text, score_text, _ = fields
            try:
                rank, score = int(rank_text), float(score_text)
            except ValueError:
                raise ValueError(f"line {number}: bad rank or score in {raw.strip()!r}") from None
            if not math.isfinite(score):
                raise ValueError(f"line {number}: score must be finite, got {score_text!r}")
            if (qid, docid) in seen:
                raise ValueError(f"line {number}: docid {docid!r} appears twice for qid {qid!r}")
            seen.add((qid, docid))
            rows.setdefault(qid, []).append((rank, number, docid, score))
    return {qid: [(docid, score) for _, _, docid, score in sorted(docs)] for qid, docs in rows.items()}


def write_qrels(path: str | os.PathLike[str], qrels: Mapping[object, Mapping[object, float]]) -> None:
    """Write ``qrels`` (qid -> {docid: grade}) as ``qid 0 docid grade`` lines.

    Whole-number grades are written as integers (what ``trec_eval`` expects);
    fractional grades are kept as decimals for tools that accept them.
    """
    lines: list[str] = []
    for qid, judged in qrels.items():
        for docid, grade in judged.items():
            number = len(lines) + 1
            q, d = _check_id(qid, "qid", number), _check_id(docid, "docid", number)
            lines.append(f"{q} 0 {d} {_format_grade(_finite(grade, 'grade', number))}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def read_qrels(path: str | os.PathLike[str]) -> Qrels:
    """Read a qrels file into qid -> {docid: grade}. Raises ValueError naming the line for
    a malformed line or a (qid, docid) pair judged twice."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(f"line {number}: expected 'qid 0 docid grade', got {raw.strip()!r}")
            qid, _, docid, grade_text = fields
            try:
                grade = float(grade_text)
            except ValueError:
                raise ValueError(f"line {number}: grade must be a number: {raw.strip()!r}") from None
            judged = qrels.setdefault(qid, {})
            if docid in judged:
                raise ValueError(f"line {number}: docid {docid!r} judged twice for qid {qid!r}")
            judged[docid] = grade
    return qrels
