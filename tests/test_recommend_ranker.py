"""The "for you" ranking stage: candidate union, features, LambdaMART fitted on validation targets, save -> load."""

from __future__ import annotations

import numpy as np

from shoprank.cascade.base import Ranker
from shoprank.recommend import features as feats
from shoprank.recommend import sources as src
from shoprank.recommend.ranker import RankingStage, StageConfig, fit_stage
from tests.test_recommend_sources import COUNTS, POPULARITY, TEXT, TRENDING, DotModel, covisit


def stage(ranker=None) -> RankingStage:  # noqa: ANN001
    import torch

    m = covisit()
    sources = [src.SequenceSource(DotModel(), torch.from_numpy(TEXT)), src.CovisitSource(m),
               src.ItemToItemSource(m), src.TextSource(TEXT), src.ColdSource(TEXT, COUNTS),
               src.TrendingSource(TRENDING, POPULARITY)]
    n = len(COUNTS)
    items = feats.ItemTable(TEXT, POPULARITY, TRENDING, COUNTS, np.full(n, -1, np.int32),
                            np.full(n, np.nan, np.float32), m)
    return RankingStage(sources, items, ranker, StageConfig(max_users=400, batch_size=64, short_share=0.0))


def test_union_keeps_each_candidate_once() -> None:
    a = np.array([[3, 1, -1], [2, 2, 5]])
    b = np.array([[1, 4, 7], [-1, -1, -1]])
    assert feats.union([a, b]).tolist() == [[1, 3, 4, 7], [2, 5, -1, -1]]


def test_source_ranks_with_a_sentinel_for_missing() -> None:
    cands = np.array([[1, 3, 4, -1]])
    ranks = feats.source_ranks(cands, {"s": np.array([[4, 1]])}, 6)["s"]
    assert ranks[0, :3].tolist() == [2.0, feats.RANK_MISSING, 1.0]


def test_features_have_their_names() -> None:
    s = stage()
    h = src.Histories([np.array([1, 2, 3])], [np.ones(3, np.int64)])
    cands, x = s.candidates(h)
    assert x.shape == (1, cands.shape[1], len(s.feature_names))
    col = s.feature_names.index("history_length")
    assert np.all(x[0, cands[0] >= 0, col] == 3)
    assert np.all(np.isnan(x[0, :, s.feature_names.index("category_affinity")]))  # no categories known


def _validation(n: int, seed: int = 0) -> tuple[src.Histories, np.ndarray]:
    """Users who bought three items of a block; the validation target is the block's fourth."""
    rng = np.random.default_rng(seed)
    items, targets = [], []
    for u in range(n):
        block = rng.permutation(4) + 1 + 4 * (u % 2)
        items.append(block[:3])
        targets.append(block[3])
    return src.Histories(items, [np.ones(3, np.int64) for _ in items]), np.array(targets)


def test_the_fitted_stage_ranks_the_held_out_item_first_and_survives_save_load(tmp_path) -> None:  # noqa: ANN001
    from shoprank.ranking.fusion import FusionConfig, FusionRanker

    s = stage()
    h, t = _validation(200)
    summary, stop = fit_stage(s, h, t, progress=False, fusion=FusionConfig(n_estimators=20, min_data_in_leaf=5,
                                                                            threads=1))
    assert summary["union_recall_valid"] == 1.0 and len(stop) == 40
    assert isinstance(s.ranker, Ranker)
    test_h, test_t = _validation(20, seed=1)
    ranked = s.rank(test_h)
    assert ranked.ids[:, 0].tolist() == test_t.tolist()
    assert np.all(np.diff(ranked.scores[np.isfinite(ranked.scores)].reshape(20, -1), axis=1) < 0)
    s.ranker.save(tmp_path)
    again = stage(FusionRanker.load(tmp_path)).rank(test_h)
    assert again.ids.tolist() == ranked.ids.tolist()
    np.testing.assert_array_equal(again.scores, ranked.scores)


def test_no_history_gets_the_trending_list() -> None:
    ranked = stage().rank(src.Histories([np.zeros(0, np.int64)], [np.zeros(0, np.int64)]))
    ids = ranked.ids[0][ranked.ids[0] >= 0]
    assert ids[:2].tolist() == [5, 1]  # most trending first


def test_strictly_falling_is_the_column_loop_bit_for_bit() -> None:
    import warnings

    from shoprank.recommend.ranker import strictly_falling

    def loop(scores: np.ndarray) -> np.ndarray:
        out = np.array(scores, np.float32)
        for j in range(1, out.shape[1]):
            out[:, j] = np.minimum(out[:, j], np.nextafter(out[:, j - 1], np.float32(-np.inf)))
        return out

    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nextafter(-FLT_MAX) overflows to -inf, as intended
        for trial in range(600):
            n, b = int(rng.integers(1, 30)), int(rng.integers(1, 4))
            x = (rng.normal(size=(b, n)) * 10.0 ** float(rng.integers(-44, 38))).astype(np.float32)
            if trial % 4:
                x = np.round(x, 1).astype(np.float32)  # ties
            if trial % 4 == 2:
                x[:, rng.integers(0, n, size=n // 2)] = 0.0
                x[:, rng.integers(0, n, size=n // 4)] = -0.0
            if trial % 4 == 3:
                x = -np.sort(-x, axis=1)
                x[:, n - n // 3:] = -np.inf
            if trial % 7 == 0:
                x[:, :1] = np.float32(-3.4028235e38)
            if trial % 11 == 0:
                x[:, :1] = np.inf
            want, got = loop(x), strictly_falling(x)
            assert np.array_equal(want.view(np.int32), got.view(np.int32)), x
    ties = strictly_falling(np.array([[2.0, 2.0, 2.0, 1.0, -np.inf, -np.inf]], np.float32))[0]
    assert ties[0] == 2.0 and ties[0] > ties[1] > ties[2] > ties[3] == 1.0 and np.isneginf(ties[4:]).all()
