"""Ray for the heavy batch work: the catalogue embedded across workers (Ray Data) and the encoders and the
sequence model trained data-parallel (Ray Train over PyTorch's gloo process group), with the one training loop
of :mod:`shoprank.training.loop`.

``--workers N`` on ``train search``, ``train recommend`` and ``baseline`` turns it on; a local Ray cluster is
started unless ``SHOPRANK_RAY`` names one (``ray://host:10001`` or ``auto``).
"""

from __future__ import annotations

from shoprank.cluster.connect import RayConfig, RayJobError, cluster

__all__ = ["RayConfig", "RayJobError", "cluster"]
