"""What a data-set importer produces: raw product, event and judgment rows for a shop."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Rows = list[tuple[int, dict[str, Any]]]


@dataclass
class DatasetRows:
    """Raw rows (numbered by their line in the source file) per record kind."""

    products: Rows = field(default_factory=list)
    events: Rows = field(default_factory=list)
    judgments: Rows = field(default_factory=list)

    def kinds(self) -> Iterator[tuple[str, Rows]]:
        yield "products", self.products
        yield "events", self.events
        yield "judgments", self.judgments


def data_root() -> Path:
    """``$SHOPRANK_DATA``, else ``../shared/datasets`` beside the working folder."""
    env = os.environ.get("SHOPRANK_DATA")
    if env:
        return Path(env)
    for candidate in (Path.cwd().parent / "shared" / "datasets", Path.cwd() / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "datasets"


def text_id(*parts: str, prefix: str = "p") -> str:
    """A stable product id for data sets whose products have none (same text -> same id)."""
    return f"{prefix}{hashlib.sha1(chr(31).join(parts).encode()).hexdigest()[:16]}"


def require(path: Path, published: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found. This data set is published at {published}; "
            "download it and point --path (or SHOPRANK_DATA) at the folder that holds it."
        )
    return path
