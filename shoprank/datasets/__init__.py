"""Importers for public data sets: each maps a set to products, events and judgments."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from shoprank.datasets.base import DatasetRows, data_root

DATASETS: dict[str, str] = {
    "homedepot": "shoprank.datasets.homedepot",
    "crowdflower": "shoprank.datasets.crowdflower",
    "amazon-games": "shoprank.datasets.amazon_games",
    "multicpr-zh": "shoprank.datasets.multicpr",
}


def dataset_module(name: str) -> Any:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    return importlib.import_module(DATASETS[name])


def load_dataset(name: str, path: str | Path | None = None) -> DatasetRows:
    """Raw rows of a named data set, read from ``path`` or from the data root."""
    module = dataset_module(name)
    folder = Path(path) if path is not None else data_root() / module.FOLDER
    return module.load(folder)


def import_rows(store: Any, rows: DatasetRows, *, progress: bool = False) -> dict[str, dict[str, int]]:
    """Validate every row, then store each kind as one batch; any bad row refuses all."""
    from shoprank.data.ingest import IngestError, parse_records, write_records

    parsed = {}
    for kind, raw in rows.kinds():
        records, errors, read = parse_records(kind, raw)
        if errors:
            raise IngestError(errors, read)
        parsed[kind] = (records, read)
    summary = {}
    for kind, (records, read) in parsed.items():
        result = write_records(store, kind, records) if records else None
        summary[kind] = {
            "read": read,
            "stored": result.stored if result else 0,
            "updated": result.updated if result else 0,
            "duplicates": result.duplicates if result else 0,
        }
    return summary


__all__ = ["DATASETS", "DatasetRows", "data_root", "dataset_module", "import_rows", "load_dataset"]
