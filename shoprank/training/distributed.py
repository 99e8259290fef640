"""The loop's view of a ``torch.distributed`` process group (what Ray Train's ``TorchTrainer`` sets up).

Data parallel as PyTorch DDP does it: every worker starts from rank 0's weights, computes the loss of its
share of each global batch, and the gradients are averaged across workers (an all-reduce) before each
optimiser step, so the workers' weights stay identical. This is done on the parameters directly rather than
through the ``DistributedDataParallel`` wrapper so that each model's own loss method (not only ``forward``)
can be used. Outside a process group every function here is the single-process identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(rank, number of workers); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(items: Sequence[T]) -> Sequence[T]:
    """This worker's share of a global batch: every ``size``-th item from its rank (all of it alone)."""
    rank, size = world()
    return items if size == 1 else items[rank::size]


def broadcast_parameters(model: Any) -> None:
    """Every worker takes rank 0's parameters and buffers (DDP does this when it wraps a model)."""
    import torch.distributed as dist

    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(model: Any) -> None:
    """All-reduce the mean of each gradient across workers (a worker without one contributes zeros)."""
    import torch
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    _, size = world()
    params = [p for p in model.parameters() if p.requires_grad]
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    grads = [p.grad for p in params]
    flat = _flatten_dense_tensors(grads)  # one all-reduce for the whole model, as DDP's buckets do
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= size
    for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(averaged)


def broadcast_float(value: float) -> float:
    """Rank 0's ``value`` on every worker (the validation score that drives early stopping)."""
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())
