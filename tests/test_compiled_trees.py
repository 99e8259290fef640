"""LightGBM's trees under ONNX Runtime give LightGBM's scores, bit for bit in float32, missing values included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from shoprank.ranking.compiled_trees import compile_booster  # noqa: E402
from shoprank.ranking.fusion import FusionConfig, FusionRanker  # noqa: E402


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1] * 3)  # integer-valued: thresholds between neighbours
    x[rng.random(n) < 0.3, 2] = np.nan  # missing in training: splits with missing type NaN
    x[:, 3] = np.where(rng.random(n) < 0.4, 0.0, x[:, 3])  # many exact zeros
    return x


def _booster(x: np.ndarray, categorical: list[int] | None = None) -> object:
    y = (np.nan_to_num(x[:, 2], nan=1.5) + x[:, 0] * x[:, 1] > 0.5).astype(np.float32)
    if categorical:
        y = y + 2.0 * np.isin(x[:, 4], (1, 3))  # a split the categorical column must make
    data = lgb.Dataset(x, y, categorical_feature=categorical or "auto")
    return lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 15, "min_data_in_leaf": 5,
                      "seed": 0, "num_threads": 1}, data, num_boost_round=40)


def test_compiled_trees_give_lightgbm_scores_exactly() -> None:
    booster = _booster(_rows(3000, 0))
    types = {n["missing_type"] for t in booster.dump_model()["tree_info"] for n in _splits(t["tree_structure"])}
    assert {"NaN", "None"} <= types  # both kinds of missing-value branch are exercised
    compiled = compile_booster(booster)
    assert compiled is not None
    probe = _rows(5000, 1)
    probe[:50] = np.nan  # every feature missing, including ones never missing in training (read as 0)
    probe[50:100, 1] = np.round(probe[50:100, 1])
    expected = booster.predict(probe, num_threads=1).astype(np.float32)
    assert np.array_equal(compiled.predict(probe), expected)
    first10 = compile_booster(booster, num_iteration=10)
    assert np.array_equal(first10.predict(probe), booster.predict(probe, num_iteration=10).astype(np.float32))
    with pytest.raises(ValueError, match="features"):
        compiled.predict(probe[:, :3])


def _splits(node: dict) -> list[dict]:
    if "split_feature" not in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


def test_categorical_splits_keep_lightgbm_and_the_ranker_answers_alike(tmp_path: Path) -> None:
    x = _rows(2000, 2)
    x[:, 4] = np.random.default_rng(3).integers(0, 5, len(x))
    assert compile_booster(_booster(x, categorical=[4])) is None  # not expressible exactly: LightGBM predicts

    rows = _rows(600, 5)
    gains = (rows[:, 0] > 0.3).astype(float) + (np.nan_to_num(rows[:, 2]) > 0)
    ranker = FusionRanker([f"f{i}" for i in range(6)], FusionConfig(n_estimators=30, threads=1))
    ranker.fit(rows, gains, [20] * 30)
    assert ranker._compiled() is not None
    probe = _rows(400, 6)
    lightgbm_scores = ranker.booster.predict(probe, num_iteration=ranker.best_iteration).astype(np.float32)
    assert np.array_equal(ranker.predict(probe), lightgbm_scores)
    ranker.save(tmp_path)
    again = FusionRanker.load(tmp_path)
    assert np.array_equal(again.predict(probe), lightgbm_scores)
