"""Training SASRec: full or sampled softmax, AdamW, early stopping on validation NDCG@10.

Training profiles (:mod:`shoprank.training.profiles`): ``demo`` and ``quick`` for a new shop (early stopping
decides the epochs), ``full`` for the quality figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from shoprank.recommend.interactions import Sequences, pad_left
from shoprank.recommend.sasrec import SASRec, SASRecConfig
from shoprank.training.loop import TrainConfig, fit, seed_everything
from shoprank.training.profiles import resolve


@dataclass
class RecTrainConfig:
    """Everything that shapes one SASRec training run."""

    model: SASRecConfig
    train: TrainConfig
    negatives: int = 0  # 0: full softmax over the catalogue; N: sampled softmax with N shared negatives
    full_softmax_max_items: int = 60_000  # above this catalogue size, ``negatives=0`` falls back to 512
    eval_users: int = 0  # validate on this many users (0: all)
    threads: int = 1  # more threads only help on an idle machine
    profile: str = "custom"
    extra: dict[str, float] = field(default_factory=dict)


PROFILES: dict[str, dict[str, Any]] = {  # by profile: sections of settings (shoprank.training.profiles)
    "quick": {  # early stopping decides: on a new shop the epochs its validation needs, at most 30
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 2, "dropout": 0.3, "max_len": 50},
        "train": {"epochs": 30, "batch_size": 256, "learning_rate": 2e-3, "weight_decay": 0.05, "patience": 2,
                  "warmup_ratio": 0.05},
        "run": {"negatives": 512, "eval_users": 10_000},
        "text": {"max_length": 64},
    },
    "demo": {  # quick, shorter: what ``shoprank demo`` trains (item texts cut at 32 tokens)
        "base": "quick",
        "train": {"epochs": 6},
        "text": {"max_length": 32},
        "stage": {"max_users": 8_000},  # the ranker learns from fewer validation users: a shorter set-up
    },
    "full": {
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 2, "dropout": 0.3, "max_len": 50},
        "train": {"epochs": 15, "batch_size": 256, "learning_rate": 2e-3, "weight_decay": 0.05, "patience": 3,
                  "warmup_ratio": 0.05},
        "run": {"negatives": 1024, "eval_users": 10_000},
        "text": {"max_length": 64},
    },
}


def profile_settings(name: str) -> dict[str, dict[str, Any]]:
    """The sections (model, train, run, text, stage) of a training profile, its base's underneath."""
    return resolve(PROFILES, name)


def profile_config(name: str, n_items: int, text_dim: int, **overrides: float | int | str) -> RecTrainConfig:
    """A named profile's config for a catalogue, with ``overrides`` (model, train or run fields by name)."""
    p = resolve(PROFILES, name)
    model = {**p["model"], **{k: v for k, v in overrides.items() if k in SASRecConfig.__dataclass_fields__}}
    train = {**p["train"], **{k: v for k, v in overrides.items() if k in TrainConfig.__dataclass_fields__}}
    run = {**p["run"], **{k: v for k, v in overrides.items() if k in RecTrainConfig.__dataclass_fields__}}
    unknown = set(overrides) - set(model) - set(train) - set(run)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    return RecTrainConfig(
        model=SASRecConfig(n_items=n_items, text_dim=text_dim, **model),  # type: ignore[arg-type]
        train=TrainConfig(**{**train, "dropout": model["dropout"]}),  # type: ignore[arg-type]  # SASRec's own
        profile=name,
        **run,  # type: ignore[arg-type]
    )


def _examples(train: Sequences, max_len: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Next-item examples: inputs s[:-1], their types, and targets s[1:], last ``max_len`` of each."""
    xs, ts, ys = [], [], []
    for items, types in zip(train.items, train.types, strict=True):
        if len(items) >= 2:
            xs.append(items[:-1][-max_len:])
            ts.append(types[:-1][-max_len:])
            ys.append(items[1:][-max_len:])
    return xs, ts, ys


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (less padding): sort inside chunks of 50 batches."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def score_histories(model: SASRec, histories: Sequence[np.ndarray], types: Sequence[np.ndarray],
                    batch_size: int = 1024, item_vectors: object | None = None) -> np.ndarray:
    """Full-catalogue scores for each history, (n, n_items + 1); empty histories score 0 everywhere."""
    import torch

    model.eval()
    out = np.empty((len(histories), model.cfg.n_items + 1), dtype=np.float32)
    with torch.no_grad():
        vectors = model.items.all() if item_vectors is None else item_vectors
        for start in range(0, len(histories), batch_size):
            h = pad_left(histories[start:start + batch_size], model.cfg.max_len)
            t = pad_left(types[start:start + batch_size], model.cfg.max_len)
            s = model.score(torch.from_numpy(h), torch.from_numpy(t), vectors)
            out[start:start + len(h)] = s.numpy()
    return out


def train_sasrec(
    train: Sequences,
    valid_histories: Sequences,
    valid_targets: np.ndarray,
    text_vectors: np.ndarray | None,
    config: RecTrainConfig,
    *,
    progress: bool = True,
    evaluate: Callable[[np.ndarray, Sequences, np.ndarray], float] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[SASRec, dict[str, object]]:
    """Train on ``train`` (each user's sequence), validate by full ranking of ``valid_targets``.

    ``evaluate(scores, histories, targets) -> NDCG@10`` is the validation metric (seen items are
    masked there). Returns the best epoch's model and a summary.
    """
    import torch

    from shoprank.recommend.evaluate import validation_ndcg
    from shoprank.training.distributed import shard

    evaluate = evaluate or validation_ndcg
    torch.set_num_threads(config.threads)
    seed_everything(config.train.seed)
    cfg = replace(config.model)
    negatives = config.negatives
    if negatives <= 0 and cfg.n_items > config.full_softmax_max_items:
        negatives = 512
    model = SASRec(cfg)
    if text_vectors is not None and cfg.text_dim:
        model.items.text_vectors = torch.from_numpy(np.ascontiguousarray(text_vectors, dtype=np.float32))
    xs, ts, ys = _examples(train, cfg.max_len)
    if not xs:
        raise ValueError("no user has two or more events: nothing to learn a next item from")
    lengths = np.array([len(x) for x in xs])
    rng = np.random.default_rng(config.train.seed)
    steps_per_epoch = math.ceil(len(xs) / config.train.batch_size)

    eval_idx = np.arange(len(valid_histories))
    if config.eval_users and config.eval_users < len(eval_idx):
        eval_idx = np.sort(np.random.default_rng(1).choice(eval_idx, config.eval_users, replace=False))
    v_hist = Sequences([valid_histories.users[i] for i in eval_idx], [valid_histories.items[i] for i in eval_idx],
                       [valid_histories.types[i] for i in eval_idx])
    v_targets = valid_targets[eval_idx]

    def loss_step(b: np.ndarray) -> torch.Tensor:
        b = shard(b)
        x = torch.from_numpy(pad_left([xs[i] for i in b], cfg.max_len))
        t = torch.from_numpy(pad_left([ts[i] for i in b], cfg.max_len))
        y = torch.from_numpy(pad_left([ys[i] for i in b], cfg.max_len))
        return model.loss(x, t, y, negatives)

    def validate() -> float:
        return evaluate(score_histories(model, v_hist.items, v_hist.types), v_hist, v_targets)

    started = time.perf_counter()
    result = fit(model, lambda epoch: _batches(lengths, config.train.batch_size, rng), loss_step, config.train,
                 steps_per_epoch=steps_per_epoch, evaluate=validate, metric="valid/ndcg@10", log_every=50,
                 desc="sasrec", progress=progress, on_epoch=on_epoch, on_step=on_step)
    summary = {
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "best_valid_ndcg@10": result.best_score,
        "seconds": time.perf_counter() - started,
        "negatives": negatives,
        "workers": result.workers,
        "history": result.history,
    }
    return model, summary
