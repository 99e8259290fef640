"""Shared helpers for benchmarks: result files and tables."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"bench": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "machine": machine(), **payload}, indent=2))
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The project's one table formatter (:func:`shoprank.evaluation.tables.markdown_table`)."""
    from shoprank.evaluation.tables import markdown_table

    return markdown_table(headers, rows)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
