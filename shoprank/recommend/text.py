"""Item text vectors for the recommender: the shop's text encoder, cached per catalogue.

``encoder`` is a local sentence-transformers model (``"default"`` = all-MiniLM-L6-v2) or
``"hash:DIM"``, a keyword-hashing encoder (no model, instant) for tests and tiny shops.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def hash_encode(texts: list[str], dim: int) -> np.ndarray:
    """Bag of lower-cased words hashed into ``dim`` buckets, L2-normalised: (len(texts), dim)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            out[row, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


DEFAULT_MAX_LENGTH = 64


def encode_items(texts: list[str], encoder: str = "default", *, progress: bool = False,
                 max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """L2-normalised float32 vectors for item texts, cut at ``max_length`` tokens (an empty text: zeros)."""
    if encoder.startswith("hash:"):
        return hash_encode(texts, int(encoder.split(":", 1)[1]))
    from shoprank.encoders.text import encode_texts

    nonempty = [i for i, t in enumerate(texts) if t.strip()]
    vectors = encode_texts([texts[i] for i in nonempty], None if encoder == "default" else encoder,
                           progress=progress, max_length=max_length) if nonempty else np.zeros((0, 384), np.float32)
    out = np.zeros((len(texts), vectors.shape[1] if len(vectors) else 384), dtype=np.float32)
    out[nonempty] = vectors
    return out


def cached_item_vectors(texts: list[str], encoder: str, cache_dir: Path | None, *,
                        progress: bool = False, max_length: int = DEFAULT_MAX_LENGTH,
                        ray: object | None = None) -> np.ndarray:
    """:func:`encode_items`, memoised in ``cache_dir`` by a hash of the encoder, the length and the texts.
    ``ray``: a :class:`~shoprank.cluster.RayConfig`: the texts are embedded across its workers (same vectors)."""

    def encode() -> np.ndarray:
        if ray is None:
            return encode_items(texts, encoder, progress=progress, max_length=max_length)
        from shoprank.cluster.embedding import EncoderSpec, embed_on_ray

        return embed_on_ray(texts, EncoderSpec("items", encoder, max_length), ray,  # type: ignore[arg-type]
                            progress=progress)

    if cache_dir is None:
        return encode()
    name = encoder if max_length == DEFAULT_MAX_LENGTH else f"{encoder}@{max_length}"
    digest = hashlib.sha256(("\x1e".join([name, *texts])).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"item-vectors-{digest}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    vectors = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    return vectors
