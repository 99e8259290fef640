"""Shops: isolated namespaces (catalogue, events, models) side by side in one data folder."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from shoprank.store.sqlite import SQLiteStore

DEFAULT_HOME = "shoprank-data"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def default_home() -> Path:
    """``$SHOPRANK_HOME`` if set, else ``./shoprank-data``."""
    return Path(os.environ.get("SHOPRANK_HOME") or DEFAULT_HOME)


def check_shop_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"shop name {name!r} is not valid: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


class Shop:
    """A shop's folder: ``store.sqlite`` and ``models/``."""

    def __init__(self, name: str, home: str | Path | None = None) -> None:
        self.name = check_shop_name(name)
        self.home = Path(home) if home is not None else default_home()
        self.path = self.home / name

    @property
    def store_path(self) -> Path:
        return self.path / "store.sqlite"

    @property
    def models_path(self) -> Path:
        return self.path / "models"

    def exists(self) -> bool:
        return self.store_path.exists()

    def store(self, *, create: bool = True) -> SQLiteStore:
        if not create and not self.exists():
            raise FileNotFoundError(
                f"shop {self.name!r} does not exist in {self.home}; "
                f"create it with 'shoprank ingest ... --shop {self.name}' or 'shoprank datasets import'"
            )
        return SQLiteStore(self.store_path)

    def delete(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)

    def __repr__(self) -> str:
        return f"Shop({self.name!r}, home={str(self.home)!r})"


def list_shops(home: str | Path | None = None) -> list[Shop]:
    root = Path(home) if home is not None else default_home()
    if not root.is_dir():
        return []
    return [
        Shop(p.name, root)
        for p in sorted(root.iterdir())
        if p.is_dir() and _NAME.match(p.name) and (p / "store.sqlite").exists()
    ]
