"""The fusion ranker: LightGBM LambdaMART over the ranking features.

Grades are turned into integer relevance levels (``round(gain * resolution)``) whose
``label_gain`` is the linear gain again, so LambdaMART optimises the NDCG we report.
The model is saved as LightGBM's own text format plus a JSON of its parameters.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class FusionConfig:
    num_leaves: int = 31
    learning_rate: float = 0.05
    n_estimators: int = 400
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    early_stopping: int = 50
    truncation_level: int = 100  # LambdaMART's pairs reach this deep: pages past the first and recall@100 count
    resolution: int = 3  # relevance levels per unit of gain
    seed: int = 0
    threads: int = 2


class FusionRanker:
    """LambdaMART; honours the cascade's ``Ranker`` protocol (``fit``, ``predict``, ``save``, ``load``)."""

    FORMAT = 1

    def __init__(self, features: list[str], config: FusionConfig | None = None) -> None:
        self.features = list(features)
        self.config = config or FusionConfig()
        self.booster: Any = None
        self.best_iteration = 0
        self._trees: tuple[tuple[int, int], Any] | None = None  # (booster id, iterations) -> compiled trees

    def _levels(self, gains: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.asarray(gains) * self.config.resolution), 0, None).astype(int)

    def fit(self, x: np.ndarray, gains: np.ndarray, groups: list[int],
            valid: tuple[np.ndarray, np.ndarray, list[int]] | None = None) -> FusionRanker:
        """``groups``: candidates per query, in row order (LightGBM's ``group``)."""
        import lightgbm as lgb

        c = self.config
        levels = self._levels(gains)
        top = int(max(levels.max(), self._levels(valid[1]).max() if valid else 0))
        params = {
            "objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "verbosity": -1,
            "num_leaves": c.num_leaves, "learning_rate": c.learning_rate, "min_data_in_leaf": c.min_data_in_leaf,
            "feature_fraction": c.feature_fraction, "bagging_fraction": c.bagging_fraction, "bagging_freq": 1,
            "lambda_l2": c.lambda_l2, "lambdarank_truncation_level": c.truncation_level, "seed": c.seed,
            "num_threads": c.threads, "deterministic": True,
            "label_gain": [level / c.resolution for level in range(top + 1)],
        }
        train = lgb.Dataset(x, levels, group=groups, feature_name=self.features, free_raw_data=False)
        sets, callbacks = [train], []
        if valid is not None:
            sets = [lgb.Dataset(valid[0], self._levels(valid[1]), group=valid[2], reference=train)]
            callbacks = [lgb.early_stopping(c.early_stopping, verbose=False)]
        self.booster = lgb.train(params, train, num_boost_round=c.n_estimators, valid_sets=sets,
                                 callbacks=callbacks)
        self.best_iteration = int(self.booster.best_iteration or c.n_estimators)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("the fusion ranker has not been trained")
        if len(x) == 0:
            return np.zeros(0, np.float32)
        compiled = self._compiled()
        if compiled is not None:
            return compiled.predict(x)
        return self.booster.predict(x, num_iteration=self.best_iteration, num_threads=1).astype(np.float32)

    def _compiled(self) -> Any:
        """The trees under ONNX Runtime (the same scores; :mod:`shoprank.ranking.compiled_trees`), made on first
        use for this booster and iteration count; None where they cannot be (LightGBM then predicts)."""
        key = (id(self.booster), self.best_iteration)
        if self._trees is None or self._trees[0] != key:
            from shoprank.ranking.compiled_trees import compile_booster

            self._trees = (key, compile_booster(self.booster, self.best_iteration))
        return self._trees[1]

    def importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance(importance_type="gain")
        return {name: float(g) for name, g in sorted(zip(self.features, gains, strict=True), key=lambda p: -p[1])}

    def save(self, folder: Path, name: str = "fusion") -> None:
        self.booster.save_model(str(folder / f"{name}.lgb.txt"), num_iteration=self.best_iteration)
        meta = {"format": self.FORMAT, "features": self.features, "config": asdict(self.config),
                "best_iteration": self.best_iteration}
        (folder / f"{name}.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path, name: str = "fusion") -> FusionRanker:
        import lightgbm as lgb

        meta = json.loads((folder / f"{name}.json").read_text())
        if meta.get("format") != cls.FORMAT:
            raise ValueError(f"{folder}/{name}.json has format {meta.get('format')!r}, expected {cls.FORMAT}")
        ranker = cls(meta["features"], FusionConfig(**meta["config"]))
        ranker.booster = lgb.Booster(model_file=str(folder / f"{name}.lgb.txt"))
        ranker.best_iteration = 0  # the saved model holds exactly the best iterations
        ranker._compiled()  # made now, not by the first request
        return ranker
