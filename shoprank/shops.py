"""Shops: isolated namespaces (catalogue, events, models) side by side in one data folder."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from shoprank.store import Backend, Store, backend_for, store_url

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
    """A shop: its records in the store, its folder (``models/``, caches, logs) under the home folder.

    The store is the embedded SQLite file ``<home>/<shop>/store.sqlite`` unless ``store`` (or
    ``$SHOPRANK_STORE``) names a PostgreSQL database that every process of the deployment shares.
    """

    def __init__(self, name: str, home: str | Path | None = None, store: str | None = None) -> None:
        self.name = check_shop_name(name)
        self.home = Path(home) if home is not None else default_home()
        self.path = self.home / name
        self.store_url = store_url(store)

    @property
    def backend(self) -> Backend:
        return backend_for(self.home, self.store_url)

    @property
    def store_path(self) -> Path:
        """Where the embedded store keeps this shop (unused with a PostgreSQL store)."""
        return self.path / "store.sqlite"

    @property
    def models_path(self) -> Path:
        return self.path / "models"

    def exists(self) -> bool:
        return self.backend.exists(self.name)

    def store(self, *, create: bool = True) -> Store:
        backend = self.backend
        if not create and not backend.exists(self.name):
            raise FileNotFoundError(
                f"shop {self.name!r} does not exist in {backend.describe()}; "
                f"create it with 'shoprank ingest ... --shop {self.name}' or 'shoprank datasets import'"
            )
        return backend.open(self.name, create=create)

    def copy_to(self, home: str | Path) -> Shop:
        """This shop copied into another home folder: its models and caches as files, its records by the store's
        :meth:`~shoprank.store.Store.backup` into the embedded store there. Nothing is written into this shop."""
        target = Shop(self.name, home, store="")
        target.path.mkdir(parents=True)
        for folder in ("models", "cache"):
            if (self.path / folder).is_dir():
                shutil.copytree(self.path / folder, target.path / folder)
        with self.store(create=False) as store:
            store.backup(target.store_path)
        return target

    def delete(self) -> None:
        self.backend.drop(self.name)
        if self.path.exists():
            shutil.rmtree(self.path)

    def __repr__(self) -> str:
        return f"Shop({self.name!r}, home={str(self.home)!r})"


def list_shops(home: str | Path | None = None, store: str | None = None) -> list[Shop]:
    root = Path(home) if home is not None else default_home()
    return [Shop(name, root, store) for name in backend_for(root, store).shop_names()]
