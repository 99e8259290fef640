"""Data-parallel training on Ray Train: the same trainer functions, the same loop, N workers.

Each worker runs the trainer (``train_sasrec``, ``fine_tune_query_encoder``, ``fine_tune_cross_encoder``) inside
the gloo process group ``TorchTrainer`` sets up; :func:`shoprank.training.loop.fit` sees the group, gives each
worker its share of every global batch, averages the gradients and lets rank 0 validate. Rank 0 hands back the
best weights as a Ray Train checkpoint (safetensors and a JSON summary); the driver loads them. Nothing is
published until the whole job has succeeded, so a dead worker never leaves half a bundle.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoprank.cluster.connect import RayConfig, RayJobError, cluster, storage_path

WEIGHTS = "model.safetensors"
SUMMARY = "summary.json"


def _hook(config: RayConfig) -> Callable[[int], None] | None:
    if config.on_step is None:
        return None
    from shoprank.training.distributed import world

    rank = world()[0]
    return lambda step: config.on_step(rank, step)  # type: ignore[misc]


def _report(model: Any, summary: dict[str, Any]) -> None:
    """Rank 0: the trained weights and the summary as this run's checkpoint; the others report the summary."""
    import ray.train
    from safetensors.torch import save_file

    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report({"done": 1})
        return
    folder = tempfile.mkdtemp(prefix="shoprank-ckpt-")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, WEIGHTS))
    Path(folder, SUMMARY).write_text(json.dumps(summary, default=float))
    ray.train.report({"done": 1}, checkpoint=ray.train.Checkpoint.from_directory(folder))


def run(worker: Callable[[dict[str, Any]], None], payload: dict[str, Any], config: RayConfig,
        name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``worker(payload)`` on ``config.workers`` Ray Train workers: (rank 0's state dict, its summary)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from safetensors.torch import load_file

    started = time.perf_counter()
    with cluster(config):
        trainer = TorchTrainer(
            worker,
            train_loop_config={**payload, "ray": config},
            scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=False, resources_per_worker={"CPU": 1}),
            torch_config=TorchConfig(backend="gloo"),
            run_config=RunConfig(name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=storage_path(config),
                                 failure_config=FailureConfig(max_failures=config.retries)),
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # TrainingFailedError and the cluster's own errors
            raise RayJobError(
                f"{name} training on {config.where} with {config.workers} workers failed: "
                f"{_first_line(exc)}. Nothing was published; run it again"
                f"{' (or allow retries)' if config.retries == 0 else ''}, or train without --workers") from exc
        if result.checkpoint is None:
            raise RayJobError(f"{name} training on {config.where} ended without a checkpoint; nothing was published")
        with result.checkpoint.as_directory() as folder:
            state = load_file(os.path.join(folder, WEIGHTS))
            summary = json.loads(Path(folder, SUMMARY).read_text())
    summary["ray"] = {**config.describe(), "seconds": round(time.perf_counter() - started, 1)}
    return state, summary


DEATH_SIGNS = ("health check failed", "ActorDiedError", "died", "Connection reset by peer", "SIGKILL")


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: a dead worker said as such, else the error's first line."""
    text = str(exc).strip() or type(exc).__name__
    if any(sign in text for sign in DEATH_SIGNS):
        return "a worker died or lost contact mid-training (killed, out of memory, or its machine went away)"
    return text.splitlines()[0][:300]


# the workers ------------------------------------------------------------------------------------


def _sasrec_worker(payload: dict[str, Any]) -> None:
    from shoprank.recommend.training import train_sasrec

    config: RayConfig = payload["ray"]
    model, summary = train_sasrec(payload["train"], payload["valid_histories"], payload["valid_targets"],
                                  payload["text_vectors"], payload["config"], progress=False,
                                  on_step=_hook(config))
    _report(model, summary)


def train_sasrec_on_ray(train: Any, valid_histories: Any, valid_targets: Any, text_vectors: Any, config: Any,
                        ray_config: RayConfig) -> tuple[Any, dict[str, Any]]:
    """:func:`shoprank.recommend.training.train_sasrec` on ``ray_config.workers`` workers: (model, summary)."""
    import numpy as np
    import torch

    from shoprank.recommend.sasrec import SASRec

    payload = {"train": train, "valid_histories": valid_histories, "valid_targets": valid_targets,
               "text_vectors": text_vectors, "config": config}
    state, summary = run(_sasrec_worker, payload, ray_config, "sasrec")
    model = SASRec(config.model)
    if text_vectors is not None and config.model.text_dim:
        model.items.text_vectors = torch.from_numpy(np.ascontiguousarray(text_vectors, dtype=np.float32))
    model.load_state_dict(state)
    model.eval()
    return model, summary


def _query_encoder_worker(payload: dict[str, Any]) -> None:
    import torch

    from shoprank.encoders.biencoder import BiEncoder, fine_tune_query_encoder

    torch.set_num_threads(1)
    config: RayConfig = payload["ray"]
    tower = BiEncoder.load(payload["base_model"], max_length=payload["max_length"])
    history = fine_tune_query_encoder(tower, payload["examples"], payload["doc_vectors"], payload["config"],
                                      payload["validate"], False, on_step=_hook(config))
    _report(tower.model, {"history": history})


def fine_tune_query_encoder_on_ray(tower: Any, examples: list[Any], doc_vectors: Any, config: Any,
                                   validate: Callable[[Any], float] | None, ray_config: RayConfig,
                                   base_model: str | None = None) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """:func:`shoprank.encoders.biencoder.fine_tune_query_encoder` on Ray: (history, where it ran); ``tower``
    receives the trained weights.
    ``validate`` runs in the rank-0 worker: it must be picklable (no open files, no locks)."""
    payload = {"examples": examples, "doc_vectors": doc_vectors, "config": config, "validate": validate,
               "base_model": base_model, "max_length": tower.max_length}
    state, summary = run(_query_encoder_worker, payload, ray_config, "query-encoder")
    tower.model.load_state_dict(state)
    tower.model.eval()
    return summary["history"], summary["ray"]


def _cross_encoder_worker(payload: dict[str, Any]) -> None:
    import torch

    from shoprank.encoders.cross_encoder import CrossEncoderRanker, fine_tune_cross_encoder

    torch.set_num_threads(1)
    config: RayConfig = payload["ray"]
    torch.manual_seed(payload["config"].seed)  # the fresh head: the same on every worker (rank 0's is broadcast)
    ranker = CrossEncoderRanker.from_pretrained(payload["base_model"], payload["max_length"],
                                                payload["config"].dropout)
    history = fine_tune_cross_encoder(ranker, payload["pairs"], payload["config"], payload["validate"], False,
                                      payload["eval_every"], on_step=_hook(config))
    _report(ranker.model, {"history": history})


def fine_tune_cross_encoder_on_ray(ranker: Any, pairs: list[Any], config: Any,
                                   validate: Callable[[Any], float] | None, ray_config: RayConfig,
                                   eval_every: int = 0, base_model: str | None = None
                                   ) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """:func:`shoprank.encoders.cross_encoder.fine_tune_cross_encoder` on Ray: (history, where it ran); ``ranker``
    receives the trained weights."""
    payload = {"pairs": pairs, "config": config, "validate": validate, "eval_every": eval_every,
               "base_model": base_model, "max_length": ranker.max_length}
    state, summary = run(_cross_encoder_worker, payload, ray_config, "cross-encoder")
    ranker.model.load_state_dict(state)
    ranker.model.eval()
    return summary["history"], summary["ray"]
