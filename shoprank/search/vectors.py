"""The base encoder's product vectors, cached per catalogue (the costliest step on a CPU).

Training (the frozen document tower) and evaluation (the untuned baseline) share them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shoprank.data.records import Product
from shoprank.search.stack import product_text


def cache_file(cache_dir: Path, texts: Sequence[str], max_length: int) -> Path:
    key = hashlib.sha1("\x1f".join(texts).encode()).hexdigest()[:16]
    name = f"untuned-minilm-{key}.npy" if max_length == 32 else f"untuned-minilm-L{max_length}-{key}.npy"
    return cache_dir / name


def base_vectors(products: Sequence[Product | None], encoder, max_length: int, cache_dir: Path | None,
                 progress: bool = False) -> np.ndarray:
    """``encoder.encode_docs`` of every product text, read from / written to ``cache_dir``."""
    texts = [product_text(p) if p is not None else "" for p in products]
    path = cache_file(cache_dir, texts, max_length) if cache_dir is not None else None
    if path is not None:
        _wait_for_other_writer(path)
        if path.exists():
            vectors = np.load(path)
            if len(vectors) == len(texts):
                return vectors
    lock = path.with_suffix(".lock") if path is not None else None
    if lock is not None:
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text(str(os.getpid()))
    try:
        vectors = encoder.encode_docs(texts, progress=progress)
        if path is not None:
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)
    return vectors


def _wait_for_other_writer(path: Path, stale_after: float = 7200.0) -> None:
    """Another process embedding the same catalogue holds ``<file>.lock``: wait for its file."""
    lock = path.with_suffix(".lock")
    while lock.exists() and not path.exists() and time.time() - lock.stat().st_mtime < stale_after:
        time.sleep(5)
    for _ in range(12):  # a writer that saved in place may still be writing
        try:
            if not path.exists():
                return
            np.load(path, mmap_mode="r")
            return
        except (ValueError, OSError, EOFError):
            time.sleep(5)
