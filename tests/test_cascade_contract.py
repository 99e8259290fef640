"""The cascade's contracts: requests checked at construction, candidates' shapes, one top-k with stable ties."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.cascade import Candidates, Request, top_k


def test_top_k_is_best_first_with_ties_in_index_order_and_cuts_agree() -> None:
    scores = np.array([1.0, 3.0, 3.0, 3.0, 2.0, -np.inf, 3.0, np.nan])
    assert top_k(scores, 2).tolist() == [1, 2]
    assert top_k(scores, 5).tolist() == [1, 2, 3, 6, 4]
    assert top_k(scores, 100).tolist() == [1, 2, 3, 6, 4, 0]  # -inf and NaN are never returned
    assert top_k(scores, 0).tolist() == []
    rng = np.random.default_rng(0)
    many = rng.integers(0, 5, size=500).astype(float)  # many ties
    for k in (1, 7, 40, 300):
        assert top_k(many, k).tolist() == top_k(many, 500)[:k].tolist()


def test_requests_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="unknown surface"):
        Request("browse")
    with pytest.raises(ValueError, match="item_id"):
        Request("similar")
    with pytest.raises(ValueError, match="user_id or history"):
        Request("recommend")
    with pytest.raises(ValueError, match="diversity"):
        Request("search", "drill", diversity=1.5)
    assert Request("search", "drill", page=3, per_page=10).offset == 20
    assert Request("search", "drill", page=3, per_page=10, limit=100).end == 100


def test_candidates_pack_rows_and_keep_shapes() -> None:
    packed = Candidates.from_rows([(np.array([4, 2]), np.array([0.9, 0.5])), (np.array([7]), np.array([1.0]))], 3)
    assert packed.ids.tolist() == [[4, 2, -1], [7, -1, -1]]
    ids, scores = packed.row(1)
    assert ids.tolist() == [7] and scores.tolist() == [1.0]
    with pytest.raises(ValueError, match="same"):
        Candidates(np.zeros((2, 3), np.int64), np.zeros((2, 2), np.float32))
