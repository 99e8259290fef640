"""The one top-k: the batched form agrees with the cascade's ``top_k`` row by row, ties in index order."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shoprank.cascade.base import top_k, top_k_rows

SCORES = arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 12)),
                elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, -np.inf, np.nan]))  # few values: many ties


@given(SCORES, st.integers(0, 14))
def test_each_row_is_the_cascade_top_k_then_the_non_finite_in_index_order(scores: np.ndarray, k: int) -> None:
    best = top_k_rows(scores, k)
    assert best.shape == (scores.shape[0], min(k, scores.shape[1]))
    for row, picked in zip(scores, best, strict=True):
        finite = top_k(row, k)
        rest = np.flatnonzero(~np.isfinite(row))[: len(picked) - len(finite)]
        assert picked.tolist() == finite.tolist() + rest.tolist()


def test_a_short_cut_is_the_head_of_a_long_one() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]], np.float32)
    assert top_k_rows(scores, 2).tolist() == [[1, 2], [0, 1]]
    assert top_k_rows(scores, 5)[:, :2].tolist() == top_k_rows(scores, 2).tolist()
    assert top_k_rows(scores, 4).tolist() == [[1, 2, 4, 3], [0, 1, 2, 3]]
