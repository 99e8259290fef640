"""One table formatter for every result table: the benches, ``shoprank evaluate ...`` and the sweep reports.

A markdown table (pipes, a rule under the header, columns padded to their widest cell), so what a command prints
pastes into ``docs/`` as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cell(value: Any, digits: int = 4) -> str:
    """A float with ``digits`` decimals, anything else as ``str`` (None: empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """``headers`` and ``rows`` (cells formatted by :func:`cell`) as a markdown table."""
    cells = [[str(h) for h in headers]] + [[cell(c, digits) for c in row] for row in rows]
    if any(len(row) != len(headers) for row in cells):
        raise ValueError(f"every row needs {len(headers)} cells (one per header), got "
                         f"{sorted({len(row) for row in cells[1:]})}")
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
