"""One behaviour suite for every peer scorer, plus known answers for the item-to-item tables."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.data.records import Event
from shoprank.recommend.baselines import (
    ALSScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    RandomScorer,
    TextMeanScorer,
)
from shoprank.recommend.evaluate import leave_one_out, mask_seen, run_scorer, summarise
from shoprank.recommend.interactions import TYPE_INDEX, Sequences
from shoprank.recommend.item2item import basket_pairs, covisitation

N = 12


def two_groups(n_users: int = 60) -> Sequences:
    """Users of group A buy items 1..6, group B items 7..12, each in a shuffled order."""
    rng = np.random.default_rng(0)
    items = [rng.permutation(np.arange(1, 7) if u % 2 else np.arange(7, 13)) for u in range(n_users)]
    return Sequences([f"u{u}" for u in range(n_users)], items, [np.full(6, 4) for _ in items])


def text_vectors() -> np.ndarray:
    v = np.zeros((N + 1, 2), dtype=np.float32)
    v[1:7, 0] = 1.0
    v[7:, 1] = 1.0
    return v


SCORERS = {
    "random": lambda: RandomScorer(),
    "popular": lambda: PopularScorer(),
    "itemknn": lambda: ItemKNNScorer(neighbours=5),
    "als": lambda: ALSScorer(factors=4, iterations=5),
    "bpr": lambda: BPRScorer(factors=4, iterations=20),
    "text": lambda: TextMeanScorer(text_vectors()),
}
LEARNS_GROUPS = ("itemknn", "als", "text")


@pytest.mark.parametrize("name", list(SCORERS))
def test_scorer_contract(name: str) -> None:
    split = leave_one_out(two_groups(), N)
    scorer = SCORERS[name]()
    scorer.fit(split.train, N)
    scores = scorer.score(split.test_histories.items[:5], np.arange(5))
    assert scores.shape == (5, N + 1) and np.isfinite(scores).all()
    ranks, top = run_scorer(scorer.score, split.test_histories, split.test_targets)
    assert ranks.min() >= 1 and ranks.max() <= N
    assert not any(set(t) & set(h) for t, h in zip(top[:, :2].tolist(), split.test_histories.items, strict=True))
    row = summarise(type("R", (), {"name": name, "ranks": ranks, "top": top, "seconds": 0.0, "note": ""})(),
                    split, text_vectors())
    assert 0 <= row["ndcg@10"] <= 1 and 0 <= row["coverage@10"] <= 1
    if name in LEARNS_GROUPS:  # the one unseen item of the user's group must come first
        assert row["hr@10"] == 1.0 and row["mrr"] == 1.0


def test_mask_seen_hides_history_and_padding() -> None:
    s = mask_seen(np.zeros((2, 4), dtype=np.float32), [np.array([1, 2]), np.array([], dtype=np.int64)])
    assert np.isneginf(s[0, :3]).all() and s[0, 3] == 0 and np.isneginf(s[1, 0]) and (s[1, 1:] == 0).all()


def test_leave_one_out_views() -> None:
    seqs = Sequences(["a", "b"], [np.array([1, 2, 3, 4]), np.array([5, 6])], [np.array([1, 2, 3, 4]), np.array([4, 4])])
    split = leave_one_out(seqs, 6)
    assert split.valid_targets.tolist() == [3] and split.test_targets.tolist() == [4]
    assert [s.tolist() for s in split.train.items] == [[1, 2], [5, 6]]  # short users: trained on, not tested
    assert [s.tolist() for s in split.train.types] == [[1, 2], [4, 4]]
    assert split.test_histories.items[0].tolist() == [1, 2, 3]
    assert split.train_counts[[1, 3, 5]].tolist() == [1, 0, 1]


def test_covisitation_is_cosine_normalised() -> None:
    view, buy = TYPE_INDEX["view"], TYPE_INDEX["purchase"]
    seqs = Sequences(["a", "b", "c"], [np.array([1, 2]), np.array([1, 2]), np.array([1, 3, 3, 3])],
                     [np.array([buy, buy]), np.array([buy, buy]), np.array([view, view, view, view])])
    table = covisitation(seqs, 3, window=1)
    idx, score = table.row(1)
    assert idx[0] == 2  # two purchase pairs beat one weak view pair
    assert score[0] == pytest.approx(2 * 2.0 / np.sqrt((4 + 0.25) * 4))


def test_bought_together_ranks_partners_by_confidence_over_baskets() -> None:
    # item 2 is bought by everyone but once with item 1; item 3 in two of item 1's three baskets
    baskets = [[1, 2], [1, 3], [1, 3]] + [[2, 4]] * 20
    events = [Event(f"e{b}-{n}", f"u{b}", f"i{item}", "purchase", 1e9 + 86_400 * b + n)
              for b, items in enumerate(baskets) for n, item in enumerate(items)]
    table, counts = basket_pairs(events, {f"i{n}": n for n in range(1, 5)}, 4)
    idx, score = table.row(1)
    assert idx.tolist() == [3] and score[0] == pytest.approx(2 / 3)  # (1, 2) has one basket: below the support
    assert table.row_support(1).tolist() == [2.0]
    assert counts == {"baskets": 23, "pairs": 2}


def test_public_surface() -> None:
    import shoprank.recommend as rec

    assert sorted(rec.__all__) == ["Recommender", "SASRec", "SASRecConfig", "train_recommender"]
    assert all(getattr(rec, name) for name in rec.__all__)
