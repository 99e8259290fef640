from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shoprank.evaluation as evaluation
from shoprank.evaluation.metrics import (
    METRICS,
    auc,
    average_precision,
    catalog_coverage,
    category_coverage,
    f1_at_k,
    get_metric,
    hit_rate_at_k,
    intra_list_diversity,
    item_probabilities,
    loo_metrics,
    loo_per_user,
    mean_metrics,
    mrr,
    ndcg_at_k,
    ndcg_at_k_batch,
    novelty,
    precision_at_k,
    rank_of_target,
    recall_at_k,
)

# --- known answers -----------------------------------------------------------


def test_ndcg_hand_computed() -> None:
    # ranked a, b, c with gains a=1, b=0, c=3 (d=2 is judged but not retrieved)
    # DCG@3  = 1/log2(2) + 0/log2(3) + 3/log2(4)   = 1 + 0 + 1.5          = 2.5
    # IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4)   = 3 + 1.2618595 + 0.5  = 4.7618595
    # NDCG@3 = 2.5 / 4.7618595                                             = 0.5250050
    gains = {"a": 1.0, "b": 0.0, "c": 3.0, "d": 2.0}
    assert ndcg_at_k(["a", "b", "c"], gains, 3) == pytest.approx(0.5250049893849101)


def test_ndcg_linear_gain_not_exponential() -> None:
    # one relevant item of grade 3 at rank 2, nothing else judged: (3/log2 3) / 3 = 1/log2 3
    assert ndcg_at_k(["x", "a"], {"a": 3.0}, 2) == pytest.approx(1 / math.log2(3))
    # two items, grades 2 and 1, swapped: (1 + 2/log2 3) / (2 + 1/log2 3) = 2.2619 / 2.6309
    assert ndcg_at_k(["b", "a"], {"a": 2.0, "b": 1.0}) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    )


def test_ndcg_edge_cases() -> None:
    gains = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg_at_k(["a", "b", "c"], gains, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["z", "y"], gains, 2) == 0.0
    assert ndcg_at_k(["a"], {"a": 0.0}, 5) == 0.0  # ideal DCG is 0
    assert ndcg_at_k([], gains, 5) == 0.0
    # repeating a relevant id earns nothing the second time
    assert ndcg_at_k(["a", "a"], {"a": 1.0, "b": 1.0}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # ideal_gains overrides the judged pool: a single grade-1 item among 2 judged relevant ones
    assert ndcg_at_k(["a"], {"a": 1.0}, 2, ideal_gains=[1.0, 1.0]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(["a"], {"a": -1.0}, 1)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(["a"], {"a": 1.0}, 0)


def test_binary_metrics_known_answers() -> None:
    ranked = ["x", "a", "y", "b"]
    relevant = {"a", "b", "c"}
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0
    assert hit_rate_at_k(ranked, relevant, 2) == 1.0
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(2 / 4)
    assert precision_at_k(["a"], {"a"}, 5) == pytest.approx(1 / 5)  # short lists are penalised
    assert f1_at_k(ranked, relevant, 4) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert mrr(ranked, relevant) == pytest.approx(1 / 2)
    assert mrr(ranked, relevant, k=1) == 0.0
    assert mrr(ranked, set()) == 0.0
    # AP: relevant at ranks 2 and 4 -> (1/2 + 2/4) / |R| = 1 / 3
    assert average_precision(ranked, relevant) == pytest.approx(1 / 3)
    assert average_precision(["a", "b"], {"a", "b"}) == pytest.approx(1.0)
    assert recall_at_k(ranked, set(), 3) == 0.0


def test_auc_known_answers() -> None:
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auc([0.9, 0.1], [1, 0]) == 1.0
    assert auc([0.1, 0.9], [1, 0]) == 0.0
    assert auc([0.5, 0.5], [1, 0]) == 0.5  # a tie counts one half
    # scores 1,2,2,3 labels 0,1,0,1: pos 2 vs neg 1 wins, vs neg 2 ties; pos 3 wins twice -> 3.5 / 4
    assert auc([1, 2, 2, 3], [0, 1, 0, 1]) == pytest.approx(3.5 / 4)
    with pytest.raises(ValueError, match="both classes"):
        auc([0.1, 0.2], [1, 1])


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=30))
def test_auc_equals_pair_counting(rows: list[tuple[int, bool]]) -> None:
    scores = [s for s, _ in rows]
    labels = [y for _, y in rows]
    pos = [s for s, y in rows if y]
    neg = [s for s, y in rows if not y]
    if not pos or not neg:
        return
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    assert auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_intra_list_diversity() -> None:
    assert intra_list_diversity(np.ones((4, 3))) == pytest.approx(0.0)
    assert intra_list_diversity(np.eye(3)) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)
    assert intra_list_diversity(np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(1 - 1 / math.sqrt(2))
    assert intra_list_diversity(np.ones((1, 3))) == 0.0
    assert intra_list_diversity(np.zeros((0, 3))) == 0.0


def test_coverage_and_novelty() -> None:
    assert category_coverage(["x", "x", "y"]) == pytest.approx(2 / 3)
    assert category_coverage(["x", "x", "y"], n_categories=4) == pytest.approx(0.5)
    assert category_coverage([]) == 0.0
    assert catalog_coverage([[1, 2], [2, 3]], 10) == pytest.approx(0.3)
    # -log2(0.5) = 1, -log2(0.25) = 2 -> mean 1.5
    assert novelty(["a", "b"], {"a": 0.5, "b": 0.25}) == pytest.approx(1.5)
    assert novelty(["a", "b"], {"a": 0.5, "b": 0.25}, k=1) == pytest.approx(1.0)
    assert novelty(["a", "z"], {"a": 0.5}, unseen_probability=0.125) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unseen_probability"):
        novelty(["z"], {"a": 0.5})
    assert item_probabilities({"a": 1, "b": 3}) == {"a": 0.25, "b": 0.75}
    assert item_probabilities({"a": 1, "b": 3}, n_users=10) == {"a": 0.1, "b": 0.3}


def test_rank_of_target_ties() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]])
    targets = np.array([0, 3])
    assert rank_of_target(scores, targets).tolist() == [3, 4]  # default: the target loses ties
    assert rank_of_target(scores, targets, ties="optimistic").tolist() == [2, 1]  # strictly greater + 1
    assert rank_of_target(scores, targets, ties="average").tolist() == [2.5, 2.5]
    with pytest.raises(ValueError, match="NaN"):
        rank_of_target(np.array([[np.nan, 1.0]]), np.array([0]))


def test_loo_metrics_known_answers() -> None:
    # ranks 1, 3, 20: ndcg@10 = (1 + 1/log2(4) + 0) / 3 = 0.5, hr@10 = 2/3, mrr = (1 + 1/3 + 1/20) / 3
    result = loo_metrics(np.array([1, 3, 20]), k=10)
    assert result == pytest.approx({"ndcg@10": 0.5, "hr@10": 2 / 3, "mrr": (1 + 1 / 3 + 1 / 20) / 3})


def test_registry() -> None:
    ranked, gains = ["a", "b"], {"b": 1.0}
    assert get_metric("ndcg@1")(ranked, gains) == 0.0
    assert get_metric("NDCG@2")(ranked, gains) == pytest.approx(ndcg_at_k(ranked, gains, 2))
    assert get_metric("mrr") is mrr
    with pytest.raises(ValueError, match="valid names: .*ndcg"):
        get_metric("ndgc")
    with pytest.raises(ValueError, match="cutoff"):
        get_metric("auc@3")
    with pytest.raises(ValueError, match="cutoff"):
        get_metric("ndcg@0")
    assert all(callable(f) for f in METRICS.values())


def test_mean_metrics() -> None:
    assert mean_metrics([{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}, {"a": 0.5, "b": 0.5}]) == {"a": 0.5, "b": 0.5}
    assert mean_metrics([]) == {}
    with pytest.raises(ValueError, match="query 1"):
        mean_metrics([{"a": 1.0}, {"b": 1.0}])


def test_public_names() -> None:
    assert sorted(evaluation.__all__) == evaluation.__all__
    assert all(hasattr(evaluation, name) for name in evaluation.__all__)


# --- properties --------------------------------------------------------------

ids = st.sampled_from("abcdefgh")
ranked_lists = st.lists(ids, max_size=10)
gain_maps = st.dictionaries(ids, st.floats(0, 5, allow_nan=False), max_size=8)
cutoffs = st.one_of(st.none(), st.integers(1, 12))


@given(ranked_lists, gain_maps, cutoffs)
def test_ndcg_in_unit_interval(ranked: list[str], gains: dict[str, float], k: int | None) -> None:
    assert 0.0 <= ndcg_at_k(ranked, gains, k) <= 1.0 + 1e-12


@given(gain_maps, cutoffs)
def test_perfect_ranking_scores_one(gains: dict[str, float], k: int | None) -> None:
    ideal = sorted(gains, key=lambda item: -gains[item])
    expected = 1.0 if any(g > 0 for g in gains.values()) else 0.0
    assert ndcg_at_k(ideal, gains, k) == pytest.approx(expected)


@given(ranked_lists, st.sets(ids), cutoffs)
def test_binary_metric_ranges(ranked: list[str], relevant: set[str], k: int | None) -> None:
    assert hit_rate_at_k(ranked, relevant, k) in {0.0, 1.0}
    for metric in (recall_at_k, precision_at_k, f1_at_k, mrr, average_precision):
        assert 0.0 <= metric(ranked, relevant, k) <= 1.0
    assert (hit_rate_at_k(ranked, relevant, k) == 1.0) == (mrr(ranked, relevant, k) > 0)


@given(st.lists(st.lists(st.floats(0, 3, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=6), cutoffs)
def test_ndcg_batch_matches_per_list(rows: list[list[float]], k: int | None) -> None:
    ranked_gains = np.array(rows)
    expected = [ndcg_at_k(list(range(4)), dict(enumerate(row)), k) for row in rows]
    np.testing.assert_allclose(ndcg_at_k_batch(ranked_gains, k), expected, atol=1e-12)


def _ranked_with_target(row: np.ndarray, target: int, target_first: bool) -> list[int]:
    """Items by score descending; among ties the target goes first (or last)."""
    tie_key = 0 if target_first else 2
    return sorted(range(len(row)), key=lambda i: (-row[i], tie_key if i == target else 1))


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=st.integers(-3, 3)),
    st.data(),
    st.integers(1, 12),
)
def test_loo_vectorised_equals_per_list(scores: np.ndarray, data: st.DataObject, k: int) -> None:
    n_users, n_items = scores.shape
    targets = np.array(data.draw(st.lists(st.integers(0, n_items - 1), min_size=n_users, max_size=n_users)))
    for ties, target_first in (("optimistic", True), ("pessimistic", False)):
        per_user = loo_per_user(rank_of_target(scores, targets, ties=ties), k)
        for u in range(n_users):
            ranked = _ranked_with_target(scores[u], int(targets[u]), target_first)
            t = int(targets[u])
            assert per_user[f"ndcg@{k}"][u] == pytest.approx(ndcg_at_k(ranked, {t: 1.0}, k))
            assert per_user[f"hr@{k}"][u] == hit_rate_at_k(ranked, {t}, k)
            assert per_user["mrr"][u] == pytest.approx(mrr(ranked, {t}))


@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.integers(1, 5)), elements=st.floats(-5, 5)))
def test_ild_is_one_minus_the_mean_pairwise_cosine_and_lies_in_its_range(vectors: np.ndarray) -> None:
    n = len(vectors)
    norms = [math.sqrt(sum(float(x) ** 2 for x in v)) for v in vectors]
    cosines = [0.0 if norms[i] == 0 or norms[j] == 0 else float(np.dot(vectors[i], vectors[j])) / (norms[i] * norms[j])
               for i in range(n) for j in range(n) if i < j]  # by hand, pair by pair
    expected = 1.0 - sum(cosines) / len(cosines) if cosines else 0.0
    value = intra_list_diversity(vectors)
    assert value == pytest.approx(expected, abs=1e-9)
    assert -1e-9 <= value <= 2.0 + 1e-9  # the metric does not clip: the range is a property, not a clamp
