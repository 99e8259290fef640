"""Model bundles: immutable, versioned, checksummed folders, published atomically.

Layout under a shop's ``models/`` folder::

    models/<kind>/<version>/manifest.json   # format version, kind, created, files + sha256
    models/<kind>/<version>/...             # the model's plain files (npy, safetensors, json)
    models/<kind>/LATEST                    # the name of the last good version

A bundle is written into a temporary folder, fsynced, checked, and renamed into place;
``LATEST`` is then replaced atomically. A bundle whose files do not match its manifest
is refused by :func:`open_bundle`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(RuntimeError):
    """A bundle is missing, incomplete, corrupt or of an unknown format."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    kind: str
    version: str
    manifest: dict[str, Any]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.manifest.get("params", {}))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _new_version() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid() % 10000:04d}-{time.perf_counter_ns() % 100000:05d}"


@contextmanager
def publish(models_root: str | Path, kind: str, params: dict[str, Any] | None = None) -> Iterator[Path]:
    """Write a new bundle: ``with publish(root, "search") as folder: save files into folder``.

    On normal exit the manifest is written, everything fsynced, the folder renamed into
    place and ``LATEST`` switched to it. On an exception nothing becomes visible.
    """
    root = Path(models_root) / kind
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        yield staging
        files = {
            str(p.relative_to(staging)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        version = _new_version()
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "version": version,
            "created": time.time(),
            "params": params or {},
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _fsync_tree(staging)
        final = root / version
        os.rename(staging, final)
        set_latest(root.parent, kind, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def set_latest(models_root: str | Path, kind: str, version: str) -> None:
    root = Path(models_root) / kind
    open_bundle(models_root, kind, version)  # refuse to point at a bad bundle
    tmp = root / f".LATEST.{os.getpid()}"
    tmp.write_text(version)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, root / "LATEST")
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_version(models_root: str | Path, kind: str) -> str | None:
    pointer = Path(models_root) / kind / "LATEST"
    if not pointer.exists():
        return None
    return pointer.read_text().strip() or None


def list_versions(models_root: str | Path, kind: str) -> list[str]:
    root = Path(models_root) / kind
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def open_bundle(models_root: str | Path, kind: str, version: str | None = None, *, verify: bool = True) -> Bundle:
    """The bundle ``version`` (default: LATEST), checked against its manifest."""
    version = version or latest_version(models_root, kind)
    if version is None:
        raise BundleError(
            f"no '{kind}' model has been published in {models_root}; run 'shoprank train {kind}' first"
        )
    path = Path(models_root) / kind / version
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"bundle {path} has no manifest: it is incomplete")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle {path}: manifest is not valid JSON ({exc})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle {path}: format version {manifest.get('format_version')!r}, this shoprank reads {FORMAT_VERSION}"
        )
    if manifest.get("kind") != kind:
        raise BundleError(f"bundle {path} holds a '{manifest.get('kind')}' model, not '{kind}'")
    if verify:
        for name, info in manifest.get("files", {}).items():
            file = path / name
            if not file.is_file():
                raise BundleError(f"bundle {path}: file {name} is missing")
            if file.stat().st_size != info["bytes"] or sha256_file(file) != info["sha256"]:
                raise BundleError(f"bundle {path}: file {name} does not match its checksum (corrupt)")
    return Bundle(path=path, kind=kind, version=version, manifest=manifest)
