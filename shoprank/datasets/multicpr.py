"""Multi-CPR e-commerce (Taobao) query-title matching, Chinese (Long et al., SIGIR 2022)."""

from __future__ import annotations

import csv
from pathlib import Path

from shoprank.datasets.base import DatasetRows, require, text_id

PUBLISHED = "https://github.com/Alibaba-NLP/Multi-CPR (e-commerce domain)"
FOLDER = "multicpr_zh"


def load(folder: Path) -> DatasetRows:
    rows = DatasetRows()
    seen: set[str] = set()
    with require(folder / "pairs.csv", PUBLISHED).open(newline="", encoding="utf-8") as handle:
        for line, rec in enumerate(csv.DictReader(handle), start=2):
            pid = text_id(rec["item_title"], prefix="zh")
            if pid not in seen:
                seen.add(pid)
                rows.products.append((line, {"id": pid, "title": rec["item_title"], "language": "zh"}))
            rows.judgments.append(
                (line, {"query": rec["query"], "product_id": pid, "grade": rec["label"]})
            )
    return rows
