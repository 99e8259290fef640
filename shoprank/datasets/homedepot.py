"""Home Depot product search relevance (Kaggle, 2016): titles and graded query judgments."""

from __future__ import annotations

import csv
from pathlib import Path

from shoprank.datasets.base import DatasetRows, require

PUBLISHED = "https://www.kaggle.com/c/home-depot-product-search-relevance (train.csv, product titles)"
FOLDER = "homedepot"


def load(folder: Path) -> DatasetRows:
    rows = DatasetRows()
    with require(folder / "products.csv", PUBLISHED).open(newline="", encoding="utf-8") as handle:
        for line, rec in enumerate(csv.DictReader(handle), start=2):
            rows.products.append(
                (line, {"id": rec["product_uid"], "title": rec["product_title"], "language": "en"})
            )
    known = {raw["id"] for _, raw in rows.products}
    with require(folder / "judgments.csv", PUBLISHED).open(newline="", encoding="utf-8") as handle:
        for line, rec in enumerate(csv.DictReader(handle), start=2):
            if rec["product_uid"] not in known:  # a judged product missing from products.csv
                rows.products.append((line, {"id": rec["product_uid"], "title": rec["product_title"]}))
                known.add(rec["product_uid"])
            rows.judgments.append(
                (line, {"query": rec["search_term"], "product_id": rec["product_uid"],
                        "grade": rec["relevance"]})
            )
    return rows
