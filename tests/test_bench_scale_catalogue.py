"""bench.scale_catalogue on a tiny catalogue: every step runs through the product's code and the counts add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import scale_corpus

DATA = scale_corpus.data_root()
needs_data = pytest.mark.skipif(not (DATA / "homedepot" / "products.csv").is_file() or
                                not (DATA / "amazon_games" / "Games-6k.item").is_file(),
                                reason=f"the Home Depot and Amazon Games data sets are not in {DATA}")


@needs_data
def test_recipe_recombines_real_titles() -> None:
    corpus = scale_corpus.load_corpus()
    assert corpus.counts["homedepot_titles"] > 50_000 and corpus.counts["amazon_titles"] > 15_000
    r = scale_corpus.recipe(corpus, 3_000, sources=1_000)
    first = [scale_corpus.product_record(corpus, r, i) for i in range(1_000)]
    titles = {s.title for s in corpus.sources}
    assert all(rec["title"] in titles and "attributes" not in rec for rec in first)  # the real products unchanged
    later = [scale_corpus.product_record(corpus, r, i) for i in range(1_000, 3_000)]
    assert all(rec["attributes"] for rec in later)  # every variant has a real colour or size
    for rec in later:
        base = corpus.sources[int(r.source[int(rec["id"][1:])])].title
        assert rec["title"].startswith(base)
        assert all(v in corpus.colours or v in corpus.sizes for v in rec["attributes"].values())
    assert len({rec["id"] for rec in first + later}) == 3_000


def test_compose_is_unit_and_source_only_without_attributes() -> None:
    rng = np.random.default_rng(0)
    parts = scale_corpus.Parts(rng.standard_normal((3, 4)).astype(np.float32),
                               rng.standard_normal((2, 4)).astype(np.float32),
                               rng.standard_normal((2, 4)).astype(np.float32), 0, 0, 0.0)
    r = scale_corpus.Recipe(np.array([0, 1, 2]), np.array([-1, 0, 1]), np.array([-1, -1, 1]), np.ones(3))
    v = scale_corpus.compose(parts, r, 0.5)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v[0], parts.sources[0] / np.linalg.norm(parts.sources[0]), atol=1e-6)
    want = parts.sources[2] + 0.5 * (parts.colours[1] + parts.sizes[1])
    assert np.allclose(v[2], want / np.linalg.norm(want), atol=1e-6)


@needs_data
def test_tiny_run_writes_every_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import common, scale_catalogue

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    result = scale_catalogue.main(["--products", "2000", "--sources", "600", "--home", str(tmp_path / "home"),
                                   "--queries", "12", "--embed-sample", "150", "--rec-trials", "8",
                                   "--threads", "1"])
    written = json.loads((tmp_path / "results" / "scale_catalogue.json").read_text())
    assert written["products"] == 2000 and "partial" not in written
    assert written["ingest"]["read"] == written["ingest"]["stored"] == 2000
    assert written["corpus"]["distinct_sources_used"] == 600 and written["corpus"]["variants"] == 1400
    assert written["build"]["dense_kind"] == "flat" and written["build"]["version"].startswith("baseline-")
    assert {"lexical (BM25)", "dense (FAISS)"} <= set(written["build"]["parts_s"])
    assert written["embedding"]["sample"] == 150 and written["embedding"]["products_per_s"] > 0
    assert 0.5 < written["composition"]["median"] <= 1.0001
    components = {row["component"]: row["bytes"] for row in written["memory"]["rows"]}
    assert components["stack.dense"] == 2000 * 384 * 4  # the vectors the engine holds, one row per product
    assert not [c for c in components if "FAISS" in c]  # the exact index scans those: no second copy
    assert written["memory"]["bytes_per_product"] == pytest.approx(sum(components.values()) / 2000)
    assert written["search"]["queries"] == 12 and written["search"]["p99_ms"] >= written["search"]["p50_ms"] > 0
    served = written["recall"]["options"][0]
    assert served["index"].startswith("served: flat") and served["recall"] == pytest.approx(1.0)
    rec = written["recommend"]
    assert rec["log"]["events"] == rec["ingest"]["stored"] == 2000
    assert all(v["n"] == 8 for v in rec["latency"].values())
    assert set(written["targets"]) == {"ingest_s", "bytes_per_product", "search_p99_ms"}
    assert result["products"] == written["products"]
    again = scale_catalogue.main(["--home", str(tmp_path / "home"), "--reuse", "--queries", "6",
                                  "--ef-search", "64"])  # the same shop measured again, nothing rebuilt
    assert again["reused"] and again["products"] == 2000 and "ingest" not in again and "recommend" not in again
    assert again["dense"] == {**written["dense"], "ef_search": 64}
    assert again["memory"]["bytes_per_product"] == written["memory"]["bytes_per_product"]
    assert again["search"]["queries"] == 6 and set(again["targets"]) == {"bytes_per_product", "search_p99_ms"}


def test_faiss_bytes_counts_the_index_copy_and_graph() -> None:
    import faiss

    from bench.index_memory import faiss_bytes
    from shoprank.retrieval.dense import DenseIndex

    x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    copy = faiss.IndexFlatIP(16)
    copy.add(x)
    assert faiss_bytes(copy) == {"vectors": 500 * 16 * 4}  # an index with its own copy: counted
    assert faiss_bytes(copy, x) == {"vectors": 500 * 16 * 4}  # numpy arrays elsewhere do not make it shared
    hnsw = DenseIndex(16, "hnsw", hnsw_m=8).build(x)
    held = faiss_bytes(hnsw._ready())
    assert held["vectors"] == 500 * 16 * 4
    assert held["graph"] >= 500 * 2 * 8 * 4  # level 0 keeps 2 * M neighbour slots a vector
    assert faiss_bytes(hnsw._ready(), hnsw.vectors) == {"graph": held["graph"]}  # the walk counts the view once


def test_dense_index_rows_count_only_what_the_walk_cannot_see() -> None:
    from types import SimpleNamespace

    from bench.index_memory import dense_index_rows, walk
    from shoprank.retrieval.dense import DenseIndex

    x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    for kind in ("flat", "hnsw"):
        engine = SimpleNamespace(stack=SimpleNamespace(dense=DenseIndex(16, kind, hnsw_m=8).build(x)))
        faiss_rows = dense_index_rows(engine)
        assert walk(engine.stack.dense, set()) == 500 * 16 * 4  # the vectors, once
        assert [name.rsplit(" ", 1)[-1] for name, _ in faiss_rows] == ([] if kind == "flat" else ["graph"])


def test_baseline_item_to_item_scores_every_event_in_one_pass() -> None:
    """The baseline's scores over all items equal the per-event sum they replaced (one scan of the vectors)."""
    from shoprank.recommend.service import Recommender

    rng = np.random.default_rng(0)
    n = 50
    vectors = rng.standard_normal((n + 1, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    class Covisit:
        def row(self, item: int) -> tuple[np.ndarray, np.ndarray]:
            return np.array([(item + 1) % n + 1, (item + 2) % n + 1]), np.array([4.0, 2.0], np.float32)

    class Art:
        text_vectors = vectors
        covisit = Covisit()

    rec = Recommender.__new__(Recommender)
    rec.art = Art()
    rec.catalogue = type("C", (), {"__len__": lambda self: n})()
    items = np.array([3, 7, 7, 20])
    want = np.zeros(n + 1, np.float32)
    for weight, item in zip(np.linspace(0.5, 1.0, len(items)), items, strict=True):
        idx, s = Covisit().row(int(item))
        want[idx] += weight * s / s[0]
        want += weight * 0.5 * np.maximum(vectors @ vectors[item], 0)
    assert np.allclose(rec._item2item(items), want, atol=1e-5)
