from __future__ import annotations

import numpy as np
import pytest

from shoprank.data.records import Product
from shoprank.retrieval.bm25 import BM25Config, BM25Index
from shoprank.retrieval.dense import DenseIndex
from shoprank.text import EnglishAnalyzer

TITLES = ["cordless drill kit", "drill bit set", "garden hose", "cordless leaf blower", "hose reel cart"]


def products(titles=TITLES, **extra) -> list[Product]:
    return [Product(id=f"p{i}", title=t, **extra) for i, t in enumerate(titles)]


def title_only() -> BM25Config:
    return BM25Config(k1=1.5, b=0.75, weights={"title": 1.0})


def test_bm25_matches_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    analyzer = EnglishAnalyzer()
    ours = BM25Index(analyzer, title_only()).build(products())
    ref = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    ref.index([analyzer(t) for t in TITLES], show_progress=False)
    for query in ["cordless drill", "hose", "garden hose reel"]:
        expected = ref.get_scores(analyzer(query))
        np.testing.assert_allclose(ours.score(analyzer(query)), expected, rtol=1e-5)


def test_field_weights_and_per_field_scores() -> None:
    items = [Product(id="a", title="hose", brand="acme"), Product(id="b", title="acme hose reel")]
    index = BM25Index(EnglishAnalyzer(), BM25Config(weights={"title": 1.0, "brand": 5.0})).build(items)
    scores = index.score(["acme"])
    assert scores[0] > scores[1]  # the brand field outweighs the title
    fields = index.field_scores(["acme"], np.array([0, 1]))
    assert fields[0, 3] > 0 and fields[1, 0] > 0 and fields[0, 0] == 0


def test_incremental_add_finds_new_products_and_save_load(tmp_path) -> None:
    index = BM25Index(EnglishAnalyzer(), title_only()).build(products())
    index.add([Product(id="new", title="pressure washer")])
    scores = index.score(EnglishAnalyzer()("pressure washer"))
    assert scores.argmax() == len(TITLES) and scores[: len(TITLES)].max() == 0
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    for query in ["pressure washer", "cordless drill"]:
        tokens = EnglishAnalyzer()(query)
        np.testing.assert_array_equal(loaded.score(tokens), index.score(tokens))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_dense_index_exact_neighbours_alive_mask_and_save_load(tmp_path, kind: str) -> None:
    vectors = np.eye(4, dtype=np.float32)
    index = DenseIndex(4, kind).build(vectors)
    rows, scores = index.search(np.array([[0, 1, 0, 0.1]], np.float32), 2)
    assert rows[0].tolist() == [1, 3]
    alive = np.array([True, False, True, True])
    rows, _ = index.search(np.array([[0, 1, 0, 0.1]], np.float32), 2, alive)
    assert rows[0].tolist() == [3, 0] or rows[0][0] == 3
    index.add(np.array([[0, 1, 0, 0]], np.float32))
    index.save(tmp_path, "v")
    loaded = DenseIndex.load(tmp_path, "v")
    q = np.array([[0, 1, 0, 0]], np.float32)
    assert loaded.search(q, 1, np.append(alive, True))[0][0, 0] == 4
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
