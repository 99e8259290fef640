"""The one training loop every model trains with, and its controls.

:class:`TrainConfig` holds what the mission names (optimiser, learning rate, batch size, epochs, weight decay,
dropout, early stopping, frozen or full layers) plus warm-up, gradient clipping and the seed; it is checked at
construction and serialised into each bundle (:meth:`TrainConfig.to_dict`). :func:`fit` runs the epochs and
steps, validates, stops early and keeps the best weights, for every trainer: the bi-encoders, the
cross-encoder, SASRec, the sentiment classifier and the answer matcher. Inside a ``torch.distributed``
process group (Ray Train's workers) the same loop averages gradients across workers and lets rank 0 validate
and log.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

FREEZE_MODES = ("none", "lower", "all")
OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every trainable model."""

    epochs: int = 3
    batch_size: int = 64  # the global batch: with N workers each computes batch_size / N of it
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    dropout: float = 0.1
    warmup_ratio: float = 0.1
    patience: int = 2  # validations without improvement before stopping
    freeze: str = "none"  # none: full fine-tuning; lower: freeze the lower half; all: train the head only
    seed: int = 0
    max_grad_norm: float = 1.0
    optimizer: str = "adamw"  # adamw | adam | sgd (momentum 0.9)
    log_dir: str | None = None  # TensorBoard event files go here when set

    def __post_init__(self) -> None:
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {self.freeze!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.weight_decay < 0:
            raise ValueError("weight_decay must be 0 or more")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio is a share of the steps: it must be in [0, 1)")
        if self.patience < 0:
            raise ValueError("patience must be 0 or more (0: stop at the first validation without improvement)")
        if self.max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be positive")

    def to_dict(self) -> dict[str, Any]:
        """The settings a bundle records (not where its TensorBoard files went)."""
        return {k: v for k, v in asdict(self).items() if k != "log_dir"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**data)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """The configured optimiser (no decay on biases and norms) with linear warm-up then linear decay."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, lr=config.learning_rate)
    else:
        optimizer = torch.optim.SGD(groups, lr=config.learning_rate, momentum=0.9)
    warmup = max(1, int(total_steps * config.warmup_ratio))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def freeze_transformer(model: Any, mode: str) -> None:
    """Freeze a Hugging Face encoder's embeddings and lower layers ("lower") or all of it ("all")."""
    if mode == "none":
        return
    layers = None
    for name, module in model.named_modules():
        if name.endswith("encoder.layer"):
            layers = module
            break
    for name, param in model.named_parameters():
        if mode == "all" and ("embeddings" in name or "encoder.layer" in name):
            param.requires_grad = False
        elif mode == "lower" and "embeddings" in name:
            param.requires_grad = False
    if mode == "lower" and layers is not None:
        for layer in list(layers)[: math.ceil(len(layers) / 2)]:
            for param in layer.parameters():
                param.requires_grad = False


class EarlyStopping:
    """Tracks the best validation score; ``step(score)`` returns True when training should stop."""

    def __init__(self, patience: int, mode: str = "max") -> None:
        self.patience = patience
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def step(self, score: float, epoch: int) -> bool:
        if self.sign * score > self.best:
            self.best = self.sign * score
            self.best_epoch = epoch
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        return self.bad_epochs > self.patience

    @property
    def improved(self) -> bool:
        return self.bad_epochs == 0


class MetricLog:
    """Scalars to TensorBoard event files (when a folder is given) and to a list for summaries."""

    def __init__(self, log_dir: str | Path | None) -> None:
        self.history: list[dict[str, float]] = []
        self._writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir))

    def log(self, step: int, **scalars: float) -> None:
        self.history.append({"step": step, **scalars})
        if self._writer is not None:
            for name, value in scalars.items():
                self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def set_dropout(model: Any, p: float) -> None:
    """Every ``torch.nn.Dropout`` of ``model`` drops with probability ``p`` (the config's ``dropout``)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


@dataclass
class FitResult:
    """What :func:`fit` did: the logged scalars, the best validation score and where it was reached."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = -math.inf  # -inf when nothing was validated
    best_epoch: int = -1  # 0-based epoch of the best validation (-1: the weights before training, or none)
    epochs_run: int = 0
    steps: int = 0
    stopped_early: bool = False
    workers: int = 1


def fit(
    model: Any,
    batches: Callable[[int], Iterable[Any]],
    loss_step: Callable[[Any], Any],
    config: TrainConfig,
    *,
    steps_per_epoch: int,
    epochs: int | None = None,
    evaluate: Callable[[], float] | None = None,
    metric: str = "val/ndcg@10",
    eval_every: int = 0,
    eval_before: bool = False,
    optimizer: tuple[Any, Any] | None = None,
    log_every: int = 1,
    desc: str = "training",
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> FitResult:
    """The training loop of every model.

    ``batches(epoch)`` yields that epoch's (global) batches, ``loss_step(batch)`` returns the loss tensor of one
    (with several workers it computes its own share: :func:`shoprank.training.distributed.shard`). Each step
    clips the gradients to ``config.max_grad_norm`` and steps the optimiser (``optimizer``: a prebuilt
    ``(optimizer, scheduler)``; default :func:`make_optimizer`) and the schedule. ``evaluate()`` (higher is
    better) runs after every epoch, every ``eval_every`` steps and, with ``eval_before``, once before training;
    :class:`EarlyStopping` with ``config.patience`` stops the run and the best weights are loaded back into
    ``model`` at the end. ``epochs`` overrides ``config.epochs`` (a trainer that needs a minimum of steps).
    ``on_epoch(epoch, score)`` may raise to abort (a pruned tuning trial); ``on_step(step)`` runs after each
    optimiser step. ``model.train()`` is set for the steps and ``model.eval()`` for validation and at the end.
    """
    import torch
    from tqdm.auto import tqdm

    from shoprank.training import distributed

    rank, size = distributed.world()
    lead = rank == 0
    epochs = config.epochs if epochs is None else epochs
    if size > 1:
        distributed.broadcast_parameters(model)  # every worker starts from rank 0's weights
    opt, scheduler = optimizer or make_optimizer(model, config, steps_per_epoch * epochs)
    log = MetricLog(config.log_dir if lead else None)
    stopper = EarlyStopping(config.patience)
    result = FitResult(workers=size)
    best_state: dict[str, Any] | None = None
    step = 0
    epoch = 0

    def check(**extra: float) -> bool:
        """Validate (rank 0; the score is shared), remember the best weights; True: stop now."""
        nonlocal best_state
        if evaluate is None:
            if extra:
                log.log(step, **extra)
            return False
        model.eval()
        score = float(evaluate()) if lead else 0.0
        score = distributed.broadcast_float(score) if size > 1 else score
        model.train()
        stop = stopper.step(score, epoch)
        log.log(step, **{metric: score, **extra})
        if stopper.improved:
            best_state = copy.deepcopy(model.state_dict())
        return stop

    if eval_before:  # the starting weights are the score to beat
        check()
        stopper.best_epoch = -1
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        bar = tqdm(batches(epoch), total=steps_per_epoch, desc=f"{desc} epoch {epoch + 1}/{epochs}",
                   disable=not (progress and lead), leave=False)
        for batch in bar:
            loss = loss_step(batch)
            loss.backward()
            if size > 1:
                distributed.average_gradients(model)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            opt.step()
            scheduler.step()
            opt.zero_grad()
            step += 1
            value = float(loss.item())
            total, count = total + value, count + 1
            if step % log_every == 0:
                log.log(step, **{"train/loss": value, "train/lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{value:.3f}")
            if on_step is not None:
                on_step(step)
            if eval_every and step % eval_every == 0 and check():
                result.stopped_early = True
                break
        result.epochs_run = epoch + 1
        if result.stopped_early:
            break
        stop = check(**({"train/epoch_loss": total / count} if count else {}))
        if evaluate is not None:
            score = float(log.history[-1][metric])
            if progress and lead:
                tqdm.write(f"{desc} epoch {epoch + 1}: loss {total / max(count, 1):.4f}  {metric} {score:.4f}")
            if on_epoch is not None:
                on_epoch(epoch, score)
        if stop:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log.close()
    result.history = log.history
    result.best_score = stopper.best
    result.best_epoch = stopper.best_epoch
    result.steps = step
    return result
