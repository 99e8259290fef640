"""LambdaMART fusion on synthetic lists with a known answer."""

from __future__ import annotations

import numpy as np

from shoprank.evaluation.metrics import ndcg_at_k
from shoprank.ranking.fusion import FusionConfig, FusionRanker


def _lists(n_queries: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Feature 0 is the grade plus a little noise, feature 1 is noise: the ideal order is by feature 0."""
    rng = np.random.default_rng(seed)
    gains = rng.integers(0, 4, size=(n_queries, size)).astype(np.float32)
    gains[:, 0] = 3.0  # every list has something relevant
    x = np.stack([gains + rng.normal(0, 0.2, gains.shape), rng.normal(0, 1, gains.shape)], axis=-1)
    return x.reshape(-1, 2).astype(np.float32), gains.reshape(-1), [size] * n_queries


def test_lambdamart_learns_the_ordering_feature_deep_in_the_list_and_keeps_its_settings(tmp_path) -> None:
    x, gains, groups = _lists(60, 40, seed=0)
    vx, vgains, vgroups = _lists(20, 40, seed=1)
    config = FusionConfig(min_data_in_leaf=5, n_estimators=60, early_stopping=20, truncation_level=40, resolution=1)
    ranker = FusionRanker(["signal", "noise"], config).fit(x, gains, groups, valid=(vx, vgains, vgroups))
    assert list(ranker.importance())[0] == "signal"
    tx, tgains, tgroups = _lists(20, 40, seed=2)
    scores = ranker.predict(tx)
    values = []
    for q in range(len(tgroups)):
        s, g = scores[q * 40:(q + 1) * 40], tgains[q * 40:(q + 1) * 40]
        ranked = [str(i) for i in np.argsort(-s, kind="stable")]
        values.append(ndcg_at_k(ranked, {str(i): float(v) for i, v in enumerate(g)}, 40))
    assert np.mean(values) > 0.97  # the whole list of 40 in grade order, not only its head
    ranker.save(tmp_path, "fusion_fast")
    assert "[lambdarank_truncation_level: 40]" in (tmp_path / "fusion_fast.lgb.txt").read_text()
    loaded = FusionRanker.load(tmp_path, "fusion_fast")
    assert loaded.config.truncation_level == 40
    np.testing.assert_allclose(loaded.predict(tx), scores, rtol=1e-6)
