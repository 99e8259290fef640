"""Where Ray runs: a local cluster started for the job, or an existing one named by ``SHOPRANK_RAY``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ENV_ADDRESS = "SHOPRANK_RAY"
ENV_STORAGE = "SHOPRANK_RAY_STORAGE"
INSTALL_HINT = "Ray is not installed: pip install 'ray[data,train]==2.60.0' (the lock file pins it)"


class RayJobError(RuntimeError):
    """A Ray job failed (a worker died, the cluster went away); nothing was published."""


@dataclass
class RayConfig:
    """How a job uses Ray.

    ``workers``: training workers and embedding actors (each takes one CPU). ``address``: ``None`` starts a local
    cluster of ``workers`` CPUs for the job and stops it after; ``auto`` joins the cluster started on this
    machine with ``ray start --head``; ``ray://host:10001`` a remote one through Ray Client. Default: the
    ``SHOPRANK_RAY`` environment variable. ``retries``: how often Ray Train restarts a training whose worker died
    (0: fail at once, with a message). ``storage``: where Ray Train keeps the run's checkpoints; on a cluster of
    several machines it must be a path every node reaches (NFS, ``s3://...``); default ``SHOPRANK_RAY_STORAGE``,
    else a temporary folder. ``on_step(rank, step)``: called in each worker after each optimiser step (fault
    drills; must be picklable)."""

    workers: int = 2
    address: str | None = None
    retries: int = 0
    storage: str | None = None
    on_step: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be 1 or more, got {self.workers}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        if self.address is None:
            self.address = os.environ.get(ENV_ADDRESS) or None
        if self.address is not None and self.address != "auto" and not self.address.startswith("ray://"):
            raise ValueError(f"{ENV_ADDRESS} must be 'auto' or a Ray Client address ray://host:port, "
                             f"got {self.address!r} (unset it to start a local cluster)")

    @property
    def where(self) -> str:
        return "a local Ray cluster" if self.address is None else f"the Ray cluster at {self.address}"

    def describe(self) -> dict[str, Any]:
        """What the training log and the bundle record."""
        return {"ray": True, "workers": self.workers, "cluster": self.address or "local", "retries": self.retries}


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


@contextmanager
def cluster(config: RayConfig) -> Iterator[Any]:
    """Ray connected for the block: a local cluster started here (and stopped after) or the configured one.
    Already connected (a test module's cluster): used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if config.address is None:
            ray.init(num_cpus=config.workers, include_dashboard=False, configure_logging=False,
                     log_to_driver=False)
        else:
            ray.init(address=config.address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayJobError(f"could not reach {config.where} ({exc}); check {ENV_ADDRESS} or start one with "
                          "'ray start --head'") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def storage_path(config: RayConfig) -> str:
    return config.storage or os.environ.get(ENV_STORAGE) or tempfile.mkdtemp(prefix="shoprank-ray-")
