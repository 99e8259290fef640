"""Amazon Video Games reviews (Ni, Li, McAuley, 2018) as purchase sequences, Games-6k cut.

The test file holds each user's whole sequence (history + last item); there are no times,
so events get synthetic increasing timestamps that keep each user's order. Titles carry HTML
entities (``&amp;``); they are unescaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from shoprank.datasets import atomic
from shoprank.datasets.base import DatasetRows, require

PUBLISHED = (
    "https://nijianmo.github.io/amazon/ (Video_Games), processed as Games-6k by "
    "https://github.com/RUCAIBox/LLMRank"
)
FOLDER = "amazon_games"


def load(folder: Path) -> DatasetRows:
    rows = DatasetRows()
    rows.products = [
        (line, {**raw, "title": html.unescape(raw["title"]), "category": "Video Games", "language": "en"})
        for line, raw in atomic.load_items(require(folder / "Games-6k.item", PUBLISHED))
    ]
    rows.events = atomic.load_sequences(require(folder / "Games-6k.test.inter", PUBLISHED))
    return rows
