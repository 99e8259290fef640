"""Model bundles: immutable, versioned, checksummed folders, published atomically.

Layout under a shop's ``models/`` folder::

    models/<kind>/<version>/manifest.json   # format version, kind, created, files + sha256
    models/<kind>/<version>/...             # the model's plain files (npy, safetensors, json)
    models/<kind>/LATEST                    # the name of the last good version

A bundle is written into a temporary folder, fsynced, checked, and renamed into place;
``LATEST`` is then replaced atomically. A bundle whose files do not match its manifest
is refused by :func:`open_bundle`.

A publisher holds an exclusive ``flock`` on its ``.staging-*`` folder from creation to rename. A publisher
killed with SIGKILL loses its lock with its life (the kernel drops it), so a staging folder nobody holds is
left over by a dead writer; :func:`remove_stale_staging` removes exactly those, and never the folder of a
live publisher, whatever its age or process namespace. It runs before each publish and when a server opens a
shop.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
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
STAGING_PREFIX = ".staging-"
LATEST_TMP_GRACE_SECONDS = 600.0
"""A ``.LATEST.<pid>`` file older than this is a leftover of a writer killed while switching LATEST (a live
writer holds one for milliseconds)."""

log = logging.getLogger("shoprank.bundles")


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


def _new_version(prefix: str = "") -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{prefix}{stamp}-{os.getpid() % 10000:04d}-{time.perf_counter_ns() % 100000:05d}"


def _same_folder(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the folder open as ``fd`` (not removed, not renamed away)."""
    try:
        here = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _new_staging(root: Path) -> tuple[Path, int]:
    """A fresh staging folder under ``root`` and an open descriptor holding its exclusive lock."""
    while True:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
        try:
            fd = os.open(staging, os.O_RDONLY)
        except FileNotFoundError:
            continue  # a cleaner removed it before we could open it
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner that caught it unlocked removes it
        if _same_folder(staging, fd):
            return staging, fd
        os.close(fd)  # removed between mkdtemp and the lock: take another


def remove_stale_staging(models_root: str | Path, kind: str | None = None) -> list[Path]:
    """Remove staging folders left by killed publishers (of ``kind``, or of every kind); returns them.

    A folder is removed only if its exclusive lock can be taken at once, i.e. no living publisher holds it.
    Also removes ``.LATEST.<pid>`` files older than :data:`LATEST_TMP_GRACE_SECONDS`. Errors (a read-only
    folder, a race with another cleaner) are logged and skipped.
    """
    base = Path(models_root)
    removed: list[Path] = []
    try:
        roots = [base / kind] if kind else [p for p in base.iterdir() if p.is_dir()]
    except OSError:  # no models folder yet
        return removed
    for root in roots:
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for path in entries:
            try:
                if path.name.startswith(STAGING_PREFIX) and path.is_dir():
                    if _remove_if_unlocked(path):
                        removed.append(path)
                elif path.name.startswith(".LATEST.") and \
                        time.time() - path.stat().st_mtime > LATEST_TMP_GRACE_SECONDS:
                    path.unlink()
                    removed.append(path)
            except OSError as exc:
                log.warning("could not remove the leftover %s: %s", path, exc)
    if removed:
        log.info("removed %d leftovers of killed publishers under %s", len(removed), base)
    return removed


def _remove_if_unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a living publisher is writing it
        if not _same_folder(path, fd):
            return False  # renamed into place (or removed) since we looked
        shutil.rmtree(path)
        return True
    finally:
        os.close(fd)


@contextmanager
def publish(models_root: str | Path, kind: str, params: dict[str, Any] | None = None, *,
            version_prefix: str = "") -> Iterator[Path]:
    """Write a new bundle: ``with publish(root, "search") as folder: save files into folder``.

    On normal exit the manifest is written, everything fsynced, the folder renamed into
    place and ``LATEST`` switched to it. On an exception nothing becomes visible.
    ``version_prefix`` starts the version's name (``baseline-`` for the untrained stack).
    """
    root = Path(models_root) / kind
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(models_root, kind)
    staging, lock = _new_staging(root)
    try:
        yield staging
        files = {
            str(p.relative_to(staging)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        version = _new_version(version_prefix)
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
    finally:
        os.close(lock)  # the lock goes with it; the folder is in place (or gone) by now


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
