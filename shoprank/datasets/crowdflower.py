"""CrowdFlower search results relevance (Kaggle, 2015): small shops' queries, titles, descriptions."""

from __future__ import annotations

import csv
from pathlib import Path

from shoprank.datasets.base import DatasetRows, require, text_id

PUBLISHED = "https://www.kaggle.com/c/crowdflower-search-relevance (train.csv)"
FOLDER = "crowdflower"


def load(folder: Path) -> DatasetRows:
    rows = DatasetRows()
    seen: set[str] = set()
    path = require(folder / "judgments.csv", PUBLISHED)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for rec in reader:
            line = reader.line_num
            title, description = rec["product_title"], rec["product_description"]
            pid = text_id(title, description, prefix="cf")  # one (title, description) is one product
            if pid not in seen:
                seen.add(pid)
                rows.products.append(
                    (line, {"id": pid, "title": title, "description": description, "language": "en"})
                )
            rows.judgments.append(
                (line, {"query": rec["query"], "product_id": pid, "grade": rec["median_relevance"]})
            )
    return rows
