from __future__ import annotations

import shutil

import numpy as np
import pytest

from shoprank.bundles import BundleError
from shoprank.data.records import Product
from shoprank.results import SearchFilters
from shoprank.search import SearchEngine, SearchStack
from shoprank.search.data import load_search_data
from shoprank.shops import Shop
from tests.test_search_helpers import (
    train_tiny_search,
)


@pytest.fixture(scope="module")
def trained_shop(tmp_path_factory):
    shop = Shop("tiny", tmp_path_factory.mktemp("home"))
    stack, summary = train_tiny_search(shop)
    return shop, stack, summary


def test_no_bundle_raises_bundle_error(tmp_path) -> None:
    shop = Shop("empty", tmp_path)
    shop.store().close()
    with pytest.raises(BundleError):
        SearchEngine.load(shop)


def test_training_summary_and_fusion_models(trained_shop) -> None:
    _, stack, summary = trained_shop
    assert "fast" in stack.fusion
    assert summary["queries"]["model"] > 0 and summary["queries"]["fusion"] > 0


def test_search_finds_the_keyword_products_with_parts_and_reasons(trained_shop) -> None:
    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    hits, total = engine.search("cordless drill", k=5)
    assert total >= 6 and len(hits) == 5
    assert all(h.id.startswith("drill-") for h in hits)
    assert {"bm25", "dense", "fusion"} <= set(hits[0].parts)
    assert any("drill" in r for r in hits[0].reasons)
    page2, _ = engine.search("cordless drill", k=5, offset=5)
    assert not {h.id for h in hits} & {h.id for h in page2}
    assert engine.version


def test_filters_and_typos(trained_shop) -> None:
    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    hits, _ = engine.search("drill", k=10, filters=SearchFilters(brand="bolt"))
    assert hits and all(engine.stack.catalog.products[engine.stack.catalog.row_of[h.id]].brand == "bolt"
                        for h in hits)
    hits, _ = engine.search("ladderr", k=3)
    assert hits[0].id.startswith("ladder-")


def test_upsert_and_delete_are_searchable_at_once(trained_shop) -> None:
    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    engine.upsert_products([Product(id="new-1", title="turbo paint sprayer xq9", price=99.0)])
    hits, _ = engine.search("xq9 sprayer", k=3)
    assert hits[0].id == "new-1"
    engine.delete_products(["new-1"])
    hits, _ = engine.search("xq9 sprayer", k=3)
    assert "new-1" not in {h.id for h in hits}


def test_load_applies_store_changes_made_after_training(trained_shop, tmp_path) -> None:
    shutil.copytree(trained_shop[0].path, tmp_path / "tiny")
    shop = Shop("tiny", tmp_path)
    with shop.store() as store:
        store.upsert_products([Product(id="late", title="zebra ladder deluxe")])
        store.delete_products(["ladder-0"])
    engine = SearchEngine.load(shop)
    ids = [h.id for h in engine.search("zebra ladder", k=10)[0]]
    assert ids[0] == "late" and "ladder-0" not in ids


def test_save_load_same_scores(trained_shop, tmp_path) -> None:
    _, stack, _ = trained_shop
    stack.save(tmp_path / "copy")
    loaded = SearchStack.load(tmp_path / "copy", stack.catalog.products)
    for query in ["cordless hose", "paint"]:
        tokens = stack.tokens(query)
        a = stack.candidates(tokens, stack.encode_queries([query])[0])
        b = loaded.candidates(tokens, loaded.encode_queries([query])[0])
        np.testing.assert_array_equal(a.rows, b.rows)
        fa = stack.rank(query, tokens, a, use_cross=False)
        fb = loaded.rank(query, tokens, b, use_cross=False)
        np.testing.assert_array_equal(fa[0], fb[0])
        np.testing.assert_allclose(fa[1], fb[1], rtol=1e-6)


def test_rerank_only_reorders_its_input(trained_shop) -> None:
    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    ids = ["hose-1", "drill-1", "unknown-x", "drill-2"]
    out = engine.rerank("cordless drill", ids)
    assert sorted(pid for pid, _ in out) == sorted(ids)
    assert out[-1][0] == "unknown-x" and out[0][0].startswith("drill-")


class KeywordCross:
    """A mock cross-encoder: 1 per query word found in the text."""

    def score(self, queries, texts, progress=False):
        return np.asarray([sum(w in t.lower() for w in q.lower().split()) for q, t in zip(queries, texts, strict=True)],
                          np.float32)


def test_cross_encoder_feature_path(trained_shop) -> None:
    from shoprank.ranking.features import FEATURES
    from shoprank.ranking.fusion import FusionConfig, FusionRanker
    from shoprank.search.train import fusion_rows

    _, stack, _ = trained_shop
    stack = SearchStack(stack.config, stack.catalog, stack.bm25, stack.dense, stack.encoder, stack.spell,
                        KeywordCross(), dict(stack.fusion), stack.stats)
    with Shop("tiny", trained_shop[0].home).store() as store:
        data = load_search_data(store, test_share=0.0)
    qset = data.query_set(data.train)
    rows = fusion_rows(stack, qset, qset.queries(), models=["full", "rerank"])
    assert rows["full"].groups and rows["rerank"].groups
    x, gains, groups = rows["full"].arrays(list(FEATURES))
    ce = x[:, FEATURES.index("ce")]
    assert np.isfinite(ce).sum() <= stack.config.rerank_top * len(groups)  # only the head is scored
    config = FusionConfig(min_data_in_leaf=2, n_estimators=20)
    stack.fusion["full"] = FusionRanker(list(FEATURES), config).fit(x, gains, groups)
    tokens = stack.tokens("cordless saw")
    cand = stack.candidates(tokens, stack.encode_queries(["cordless saw"])[0])
    order, scores, feats = stack.rank("cordless saw", tokens, cand, use_cross=True)
    assert np.all(np.diff(scores) <= 0) and sorted(order.tolist()) == list(range(len(cand.rows)))
    assert np.isfinite(feats[:, FEATURES.index("ce")]).any()


def test_explain_limits_parts_and_reasons_not_the_order(trained_shop) -> None:
    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    full, total = engine.search("cordless drill", k=12)
    brief, brief_total = engine.search("cordless drill", k=12, explain=3)
    assert [(i.id, i.score) for i in brief] == [(i.id, i.score) for i in full] and brief_total == total
    assert brief[:3] == full[:3] and all(i.reasons == [] and i.parts == {} for i in brief[3:])
    assert all(i.reasons for i in full)


def test_synonym_weights_through_the_trained_ranker(trained_shop) -> None:
    """Weight 1 reproduces the query with the synonym appended; 0.5 keeps the matching set, halves the added
    term's BM25 share and puts the typed word first."""
    from shoprank.synonyms import Synonyms
    from shoprank.synonyms.engine import WithSynonyms

    shop, _, _ = trained_shop
    engine = SearchEngine.load(shop)
    old, old_total = engine.search("cordless drill saw", k=100)
    full, full_total = WithSynonyms(engine, Synonyms.from_dict({"synonyms": ["drill => saw"], "weight": 1.0})
                                    ).search("cordless drill", k=100)
    assert [(h.id, h.score) for h in full] == [(h.id, h.score) for h in old] and full_total == old_total
    half, half_total = WithSynonyms(engine, Synonyms.from_dict({"synonyms": ["drill => saw"], "weight": 0.5})
                                    ).search("cordless drill", k=100)
    assert half_total == old_total and {h.id for h in half} == {h.id for h in old}
    assert half[0].id.startswith("drill-") and any(h.id.startswith("saw-") and h.parts for h in half)
    bm25_full = {h.id: h.parts["bm25"] for h in full if h.parts}
    for hit in half:
        if hit.parts and hit.id.startswith("saw-"):
            assert hit.parts["bm25"] < bm25_full[hit.id]
        elif hit.parts and hit.id.startswith("drill-"):
            assert hit.parts["bm25"] == pytest.approx(bm25_full[hit.id])
