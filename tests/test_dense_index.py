from __future__ import annotations

import json

import numpy as np
import pytest

from shoprank.retrieval import dense
from shoprank.retrieval.dense import DenseIndex


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_auto_kind_is_chosen_by_catalogue_size() -> None:
    assert DenseIndex(8, hnsw_above=50).build(unit(50, 8, 0)).kind == "flat"
    assert DenseIndex(8, hnsw_above=50).build(unit(51, 8, 0)).kind == "hnsw"
    assert DenseIndex(8, "flat", hnsw_above=10).build(unit(51, 8, 0)).kind == "flat"  # an explicit kind wins
    grown = DenseIndex(8, hnsw_above=50)
    grown.add(unit(60, 8, 1))  # first made by add: decided on what it holds then
    assert grown.kind == "hnsw"


def test_default_threshold_sits_between_the_catalogues_it_was_chosen_for() -> None:
    index = DenseIndex(8)
    assert index._resolved_kind(dense.HNSW_THRESHOLD) == "flat"
    assert index._resolved_kind(dense.HNSW_THRESHOLD + 1) == "hnsw"


def test_hnsw_finds_nearly_what_exact_finds_on_random_vectors() -> None:
    vectors, queries = unit(3000, 32, 0), unit(50, 32, 1)
    truth = exact_top(vectors, queries, 10)
    flat_rows, _ = DenseIndex(32, "flat").build(vectors).search(queries, 10)
    np.testing.assert_array_equal(flat_rows, truth)  # flat is exact
    rows, scores = DenseIndex(32, "hnsw").build(vectors).search(queries, 10)
    recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows, truth, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, rows, 1), rtol=1e-5, atol=1e-5)


def test_a_wider_search_list_finds_at_least_as_much() -> None:
    vectors, queries = unit(3000, 32, 2), unit(40, 32, 3)
    truth = exact_top(vectors, queries, 50)
    index = DenseIndex(32, "hnsw", hnsw_m=8, ef_search=10).build(vectors)

    def recall() -> float:
        rows, _ = index.search(queries, 50)
        return float(np.mean([len(set(r) & set(t)) / 50 for r, t in zip(rows, truth, strict=True)]))

    narrow = recall()
    index.set_ef_search(400)
    assert recall() >= narrow


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_round_trip_keeps_settings_and_answers(tmp_path, kind: str) -> None:
    vectors, queries = unit(500, 16, 4), unit(10, 16, 5)
    index = DenseIndex(16, kind, hnsw_m=12, ef_search=40, ef_construction=60).build(vectors)
    alive = np.ones(500, bool)
    alive[::7] = False
    index.save(tmp_path, "v")
    loaded = DenseIndex.load(tmp_path, "v")
    assert (loaded.kind, loaded.hnsw_m, loaded.ef_search, loaded.ef_construction) == (kind, 12, 40, 60)
    for a, b in zip(index.search(queries, 20, alive), loaded.search(queries, 20, alive), strict=True):
        np.testing.assert_array_equal(a, b)
    if kind == "hnsw":
        assert loaded._index.hnsw.efSearch == 40


def test_index_saved_before_ef_construction_was_recorded_loads(tmp_path) -> None:
    DenseIndex(4, "flat").build(np.eye(4, dtype=np.float32)).save(tmp_path)
    meta = json.loads((tmp_path / "dense.json").read_text())
    del meta["ef_construction"]
    (tmp_path / "dense.json").write_text(json.dumps(meta))
    assert DenseIndex.load(tmp_path).ef_construction == 80


def test_bad_settings_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="auto, flat or hnsw"):
        DenseIndex(4, "ivf")
    with pytest.raises(ValueError, match="hnsw_m >= 2"):
        DenseIndex(4, hnsw_m=1)
    with pytest.raises(ValueError, match="at least 1"):
        DenseIndex(0)


def test_the_graph_is_made_on_first_use_and_ef_search_can_change() -> None:
    vectors = unit(200, 8, 6)
    index = DenseIndex(8, "hnsw", ef_search=16).build(vectors)
    assert index.kind == "hnsw" and index._index is None  # a placeholder replaced before any search costs nothing
    rows, _ = index.search(vectors[:3], 1)
    assert rows[:, 0].tolist() == [0, 1, 2]
    index.set_ef_search(64)
    assert index._index.hnsw.efSearch == 64 and index.ef_search == 64
    index.add(unit(5, 8, 7))
    assert index._index.ntotal == len(index.vectors) == 205
    with pytest.raises(ValueError, match="at least 1"):
        index.set_ef_search(0)


def test_a_filtered_graph_search_widens_until_enough_rows_pass_the_filter() -> None:
    from shoprank.search.matching import _graph_nearest

    vectors, query = unit(3000, 32, 0), unit(1, 32, 1)[0]
    index = DenseIndex(32, "hnsw").build(vectors)
    alive = np.ones(len(vectors), bool)

    def keep(rows: np.ndarray) -> np.ndarray:  # one product in ten passes the shopper's filter
        return rows % 10 == 0

    rows, cos = _graph_nearest(index, query, alive, 50, keep)
    exact = np.flatnonzero(keep(np.arange(len(vectors))))
    exact = exact[np.argsort(-(vectors[exact] @ query), kind="stable")][:50]
    assert len(rows) == 50 and keep(rows).all()  # not the ~5 of the unfiltered top 50 that pass
    assert len(set(rows.tolist()) & set(exact.tolist())) >= 45
    assert np.all(np.diff(cos) <= 1e-6)  # most similar first
    few, _ = _graph_nearest(index, query, alive, 50, lambda r: r < 3)
    assert sorted(few.tolist()) == [0, 1, 2]  # fewer pass than asked for: every one of them, then stop
