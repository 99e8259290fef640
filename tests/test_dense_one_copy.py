"""The dense index holds each vector once and answers exactly what the two-copy index it replaced answered.

The reference below is that index (numpy array + FAISS's own copy in an IndexFlatIP or IndexHNSWFlat), kept
here as the differential oracle: same rows, same scores, same order, ties included.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from shoprank.retrieval.dense import EF_CONSTRUCTION, EF_SEARCH, HNSW_M, DenseIndex

faiss = pytest.importorskip("faiss")


class TwoCopies:
    """The dense index as it was: ``vectors`` in numpy, FAISS over a copy of them."""

    def __init__(self, dim: int, kind: str, hnsw_m: int = HNSW_M, ef_search: int = EF_SEARCH,
                 ef_construction: int = EF_CONSTRUCTION) -> None:
        if kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
            self.index.hnsw.efSearch = ef_search
        else:
            self.index = faiss.IndexFlatIP(dim)
        self.vectors = np.zeros((0, dim), np.float32)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)
        self.vectors = np.concatenate([self.vectors, vectors])

    def search(self, q: np.ndarray, k: int, alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.vectors)
        dead = 0 if alive is None else int(n - alive[:n].sum())
        scores, rows = self.index.search(q, min(n, k + dead))
        if alive is None or dead == 0:
            return rows[:, :k], scores[:, :k]
        out_rows, out_scores = np.full((len(q), k), -1), np.zeros((len(q), k), np.float32)
        for i in range(len(q)):
            keep = (rows[i] >= 0) & alive[np.maximum(rows[i], 0)]
            r, s = rows[i][keep][:k], scores[i][keep][:k]
            out_rows[i, : len(r)], out_scores[i, : len(s)] = r, s
        return out_rows, out_scores


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """HNSW insertion runs in parallel; one thread makes two graphs of the same rows the same graph."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def vectors_with_ties(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors rounded to two decimals, a quarter of them exact duplicates: many tied cosines."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    v = np.round(v / np.linalg.norm(v, axis=1, keepdims=True), 2).astype(np.float32)
    v[n - n // 4:] = v[: n // 4]
    return v


def queries(n: int, dim: int, seed: int) -> np.ndarray:
    return np.round(np.random.default_rng(seed).standard_normal((n, dim)), 1).astype(np.float32)


def assert_same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def pair(kind: str, vectors: np.ndarray) -> tuple[DenseIndex, TwoCopies]:
    ours = DenseIndex(vectors.shape[1], kind, hnsw_m=8, ef_search=64, ef_construction=40).build(vectors)
    ref = TwoCopies(vectors.shape[1], kind, hnsw_m=8, ef_search=64, ef_construction=40)
    ref.add(vectors)
    return ours, ref


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("nq", [1, 30])  # FAISS scans one query by its own loop, 20 or more as a BLAS product
def test_search_answers_what_two_copies_answered(kind: str, nq: int) -> None:
    x = vectors_with_ties(2000, 16, 0)
    ours, ref = pair(kind, x)
    q = queries(nq, 16, 1)
    alive = np.ones(len(x), bool)
    alive[::5] = False
    for k in (1, 10, 150, 2000):  # 150: past the top-k size where FAISS switches from a heap to a reservoir
        assert_same(ours.search(q, k), ref.search(q, k))
        assert_same(ours.search(q, k, alive), ref.search(q, k, alive))
    np.testing.assert_array_equal(ours.vectors, ref.vectors)
    rows = np.asarray([3, 1999, 0, 3])
    np.testing.assert_array_equal(ours.cosine(q[0], rows), ref.vectors[rows] @ q[0])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filtered_widening_answers_what_two_copies_answered(kind: str) -> None:
    from shoprank.search.matching import _graph_nearest

    x = vectors_with_ties(3000, 16, 2)
    ours, ref = pair(kind, x)
    alive = np.ones(len(x), bool)
    alive[1::9] = False
    for query in queries(5, 16, 3):
        for keep in (None, lambda r: r % 10 == 0, lambda r: r < 3):
            assert_same(_graph_nearest(ours, query, alive, 50, keep), _graph_nearest(ref, query, alive, 50, keep))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_upserts_answer_what_two_copies_answered(kind: str) -> None:
    """New products and new versions of existing ones are appended rows (the old row hidden by ``alive``)."""
    x = vectors_with_ties(1500, 16, 4)
    ours, ref = pair(kind, x)
    q = queries(8, 16, 5)
    ours.search(q, 5)  # the graph exists before the upsert, as in a served engine
    alive = np.ones(len(x), bool)
    for step, new in enumerate((vectors_with_ties(40, 16, 6), x[:7] * 0.5 + vectors_with_ties(7, 16, 7) * 0.5)):
        new = np.ascontiguousarray(new, np.float32)
        if step == 1:
            alive[:7] = False  # an update of products 0..6: their old rows hidden
        ours.add(new)
        ref.add(new)
        alive = np.concatenate([alive, np.ones(len(new), bool)])
        assert_same(ours.search(q, 30, alive), ref.search(q, 30, alive))
        np.testing.assert_array_equal(ours.vectors, ref.vectors)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_and_add_answer_what_two_copies_answered(tmp_path, kind: str) -> None:
    x = vectors_with_ties(1200, 16, 8)
    ours, ref = pair(kind, x)
    q = queries(6, 16, 9)
    ours.save(tmp_path)
    loaded = DenseIndex.load(tmp_path)
    assert_same(loaded.search(q, 40), ref.search(q, 40))
    np.testing.assert_array_equal(loaded.vectors, x)
    new = vectors_with_ties(30, 16, 10)
    loaded.add(new)
    if kind == "hnsw":  # the two-copy index loaded its graph from the same file
        ref.index = faiss.read_index(str(tmp_path / "dense.faiss"))
        ref.index.hnsw.efSearch = 64
        ref.vectors = x
    ref.add(new)
    assert_same(loaded.search(q, 40), ref.search(q, 40))


def two_copy_bundle(folder: Any, kind: str, x: np.ndarray) -> None:
    """Files as the two-copy index wrote them (format 1): the npy always, the graph file for HNSW, no
    ef_construction in the meta for the oldest ones."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "dense_vectors.npy", x)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], 8, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.add(x)
        faiss.write_index(index, str(folder / "dense.faiss"))
    (folder / "dense.json").write_text(json.dumps({"format": 1, "dim": x.shape[1], "kind": kind, "hnsw_m": 8,
                                                   "ef_search": 64}))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_bundle_written_by_the_two_copy_index_loads_and_answers_the_same(tmp_path, kind: str) -> None:
    x = vectors_with_ties(1000, 16, 11)
    two_copy_bundle(tmp_path, kind, x)
    loaded = DenseIndex.load(tmp_path)
    _, ref = pair(kind, x)
    q = queries(5, 16, 12)
    assert (loaded.kind, loaded.ef_search, loaded.ef_construction) == (kind, 64, 80)
    assert_same(loaded.search(q, 25), ref.search(q, 25))
    np.testing.assert_array_equal(loaded.vectors, x)
    loaded.save(tmp_path / "again")  # and what it writes is that format still
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(p.name for p in tmp_path.iterdir()
                                                                              if p.is_file())


def test_hnsw_vectors_are_a_view_of_the_graph_storage() -> None:
    x = vectors_with_ties(800, 16, 13)
    index = DenseIndex(16, "hnsw", hnsw_m=8).build(x)
    index._ready()
    storage = faiss.downcast_index(index._index.storage)
    start = int(storage.get_xb())
    assert index.vectors.__array_interface__["data"][0] == start  # the numpy rows are FAISS's memory
    assert not index.vectors.flags.owndata and not index.vectors.flags.writeable
    assert not np.shares_memory(index.vectors, x)  # the built array is no longer held
    index.add(vectors_with_ties(50, 16, 14))
    storage = faiss.downcast_index(index._index.storage)
    assert index.vectors.__array_interface__["data"][0] == int(storage.get_xb())  # re-taken after the add
    assert index.vectors.shape == (850, 16) and storage.ntotal == 850


def test_an_exact_index_has_no_faiss_copy() -> None:
    x = vectors_with_ties(300, 16, 15)
    index = DenseIndex(16, "flat").build(x)
    index.search(x[:2], 3)
    assert index._ready() is None and index._index is None
    assert np.shares_memory(index.vectors, x)  # built from a float32 array: that array is the one copy


def test_an_array_taken_before_an_add_stays_valid() -> None:
    """A caller holding ``vectors`` (a re-ranker's context, a slice) across an upsert keeps reading the rows it
    had: the add copies the graph instead of moving the storage under it; with nothing held it adds in place."""
    x = vectors_with_ties(600, 16, 16)
    index = DenseIndex(16, "hnsw", hnsw_m=8).build(x)
    index._ready()
    graph = index._index
    index.add(vectors_with_ties(10, 16, 17))
    assert index._index is graph  # nothing held the view: in place
    held, head = index.vectors, index.vectors[:5]
    expected = np.array(held)
    for seed in range(18, 26):  # enough rows that the storage would have moved
        index.add(vectors_with_ties(200, 16, seed))
    assert index._index is not graph
    np.testing.assert_array_equal(held, expected)
    np.testing.assert_array_equal(head, expected[:5])
    assert len(index.vectors) == 610 + 1600
    np.testing.assert_array_equal(index.vectors[:610], expected)
    del held, head
    graph = index._index
    index.add(vectors_with_ties(3, 16, 30))
    assert index._index is graph


def test_assigning_vectors_rebuilds_the_index() -> None:
    x, y = (np.random.default_rng(seed).standard_normal((400, 16)).astype(np.float32) for seed in (31, 32))
    for kind in ("flat", "hnsw"):
        index = DenseIndex(16, kind, hnsw_m=8).build(x)
        index.search(x[:1], 1)
        index.vectors = y  # what a benchmark swapping in another encoder's vectors does
        rows, _ = index.search(y[:3], 1)
        assert rows[:, 0].tolist() == [0, 1, 2]
        np.testing.assert_array_equal(index.vectors, y)
