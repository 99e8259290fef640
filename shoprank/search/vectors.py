"""The base encoder's product vectors, cached per catalogue (the costliest step on a CPU).

Training (the frozen document tower) and evaluation (the untuned baseline) share them.
"""

from __future__ import annotations

import hashlib
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
    if path is not None and path.exists():
        vectors = np.load(path)
        if len(vectors) == len(texts):
            return vectors
    vectors = encoder.encode_docs(texts, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
    return vectors
