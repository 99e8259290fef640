"""The catalogue embedded across Ray workers: Ray Data ``map_batches`` over a pool of encoder actors.

Each actor loads the encoder once and embeds batches of product texts; rows come back with their index, so
the result has the catalogue's order whatever the order the batches finish in. The vectors are those of the
in-process encoder (the same function on each batch; batch padding can move the last float digit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoprank.cluster.connect import RayConfig, RayJobError, cluster

KINDS = ("docs", "items")


@dataclass(frozen=True)
class EncoderSpec:
    """Which in-process encoder each actor builds: ``docs`` is the search document tower
    (:class:`~shoprank.encoders.biencoder.BiEncoder` of ``path``, default all-MiniLM-L6-v2); ``items`` is the
    recommender's :func:`~shoprank.recommend.text.encode_items` with encoder name ``path`` (``default``,
    ``hash:DIM`` or a local folder)."""

    kind: str = "docs"
    path: str | None = None
    max_length: int = 64

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"encoder kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def load(self) -> Callable[[list[str]], np.ndarray]:
        if self.kind == "items":
            from shoprank.recommend.text import encode_items

            name = self.path or "default"
            return lambda texts: encode_items(texts, name, max_length=self.max_length)
        from shoprank.encoders.biencoder import BiEncoder

        encoder = BiEncoder.load(self.path, max_length=self.max_length)
        return lambda texts: encoder.encode_docs(texts)


class _Embedder:
    """One Ray Data actor: the encoder, loaded once."""

    def __init__(self, spec: EncoderSpec) -> None:
        import torch

        torch.set_num_threads(1)
        self.encode = spec.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encode([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


def embed_on_ray(texts: Sequence[str], spec: EncoderSpec, config: RayConfig, *, batch_size: int = 256,
                 progress: bool = False, on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(len(texts), dim) float32 vectors of ``texts``, embedded by ``config.workers`` actors; ``on_progress(done,
    total)`` after each batch that comes back."""
    from tqdm.auto import tqdm

    if not len(texts):
        return np.zeros((0, 384), np.float32)
    with cluster(config) as ray:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        blocks = max(config.workers, min(len(texts) // batch_size + 1, config.workers * 8))
        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
        ds = ds.map_batches(_Embedder, fn_constructor_args=(spec,), batch_size=batch_size, num_cpus=1,
                            compute=ray.data.ActorPoolStrategy(size=config.workers), batch_format="numpy")
        out: np.ndarray | None = None
        bar = tqdm(total=len(texts), desc=f"embedding on {config.workers} Ray workers", unit=" products",
                   disable=not progress)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                vectors = batch["vector"]
                if out is None:
                    out = np.zeros((len(texts), vectors.shape[1]), np.float32)
                out[batch["row"]] = vectors
                bar.update(len(vectors))
                if on_progress is not None:
                    on_progress(bar.n, len(texts))
        except Exception as exc:
            raise RayJobError(f"embedding on {config.where} failed: {str(exc).strip().splitlines()[0][:300]}; "
                              "nothing was stored") from exc
        finally:
            bar.close()
    assert out is not None
    return out


class RayDocEncoder:
    """A document tower whose ``encode_docs`` runs on Ray (queries stay in-process, on ``local``)."""

    name = "biencoder"

    def __init__(self, local: Any, spec: EncoderSpec, config: RayConfig) -> None:
        self.local = local
        self.spec = spec
        self.config = config

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(texts)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return embed_on_ray(texts, self.spec, self.config, progress=progress)
