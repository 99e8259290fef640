"""The controls every model trains with: AdamW, weight decay, linear warm-up, early
stopping on a validation metric, frozen / lower-frozen / full fine-tuning, fixed seeds,
TensorBoard event files."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FREEZE_MODES = ("none", "lower", "all")


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every trainable model."""

    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    dropout: float = 0.1
    warmup_ratio: float = 0.1
    patience: int = 2  # epochs without validation improvement before stopping
    freeze: str = "none"  # none: full fine-tuning; lower: freeze the lower half; all: train the head only
    seed: int = 0
    max_grad_norm: float = 1.0
    log_dir: str | None = None  # TensorBoard event files go here when set

    def __post_init__(self) -> None:
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {self.freeze!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no decay on biases and norms) with linear warm-up then linear decay."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
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
