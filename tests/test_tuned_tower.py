"""``--doc-tower tuned``: one tower fine-tuned for queries and products on a tiny BERT made here. The bundle ships
the tuned tower, the catalogue's vectors are its own, a product upserted later is embedded by it, retraining keeps
the choice; the margin-MSE term moves the student's margin the way the teacher's scores say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_query_tower import make_tower

QUERY_WORDS = ["cordless", "drill", "garden", "hose", "ladder"]
PRODUCT_WORDS = ["faucet", "20v", "kit", "ft", "chrome"]  # query word i means product word i


def translated_shop() -> tuple[list, list]:
    """Products named by ordered pairs and triples of PRODUCT_WORDS; the query for each says the same in
    QUERY_WORDS, so an untuned tower finds nothing by token overlap and a tuned one learns the word map."""
    from itertools import permutations

    from shoprank.data.records import Judgment, Product

    products, judgments = [], []
    for n in (2, 3):
        for words in permutations(range(5), n):
            pid = "-".join(PRODUCT_WORDS[w] for w in words)
            products.append(Product(id=pid, title=" ".join(PRODUCT_WORDS[w] for w in words), language="en"))
            query = " ".join(QUERY_WORDS[w] for w in words)
            judgments.append(Judgment(query, pid, 3.0))
            judgments.append(Judgment(query, PRODUCT_WORDS[words[1]] + "-" + PRODUCT_WORDS[words[0]], 1.0))
    return products, judgments


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(next(folder.glob("**/model.safetensors"))))


def test_search_trains_and_serves_with_a_tuned_document_tower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.bundles import open_bundle
    from shoprank.data.records import Product
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.search import SearchEngine, train
    from shoprank.search.publish import SearchDataError, SearchTraining, train_and_publish
    from shoprank.shops import Shop

    # a random tiny BERT needs a higher learning rate and a few epochs to learn these queries
    monkeypatch.setitem(train.PROFILES["quick"], "biencoder_train",
                        {"epochs": 10, "batch_size": 8, "learning_rate": 2e-3, "freeze": "none", "dropout": 0.0,
                         "patience": 50})
    base = make_tower(tmp_path / "base", seed=3, layers=2)
    monkeypatch.setenv("SHOPRANK_BASE_MODEL", str(base))
    monkeypatch.setenv("SHOPRANK_CACHE", str(tmp_path / "cache"))
    shop = Shop("hardware", tmp_path / "home")
    with shop.store() as store:
        products, judgments = translated_shop()
        store.upsert_products(products)
        store.upsert_judgments(judgments)
    published = train_and_publish(shop, SearchTraining(profile="quick", holdout=0.25, cross_encoder=False,
                                                       doc_tower="tuned"), progress=False)
    said = capsys.readouterr().out
    assert "fine-tuning one tower for queries and products on" in said
    tower = published.summary["doc_tower"]
    assert tower["kind"] == "tuned" and tower["examples"] > 0 and tower["distill_weight"] == 0.0
    assert tower["valid_ndcg@10_before"] == 0.0 and tower["valid_ndcg@10"] >= 0.9  # the word map, learned
    assert tower["valid_products"] == 80  # every product of the tiny catalogue (fewer than the 3,000 sampled)

    folder = open_bundle(shop.models_path, "search").path
    shipped, untuned = _weights(folder / "doc_tower"), _weights(base)
    assert any(not np.array_equal(shipped[k], untuned[k]) for k in untuned)  # tuned, not the base model copied

    engine = SearchEngine.load(shop)
    assert engine.search("faucet 20v", k=3)[0]
    docs = BiEncoder.load(folder / "doc_tower", max_length=engine.stack.config.doc_max_length)
    docs.fast_docs = None
    texts = [p.text() for p in engine.stack.catalog.products[:5]]
    np.testing.assert_allclose(np.sum(engine.stack.dense.vectors[:5] * docs.encode_docs(texts), axis=1), 1.0,
                               atol=1e-4)  # the catalogue's vectors are the tuned tower's
    new = Product(id="kit-new", title="kit chrome ft faucet", language="en")
    engine.upsert_products([new])
    row = engine.stack.catalog.row_of["kit-new"]
    assert float(engine.stack.dense.vectors[row] @ docs.encode_docs([new.text()])[0]) >= 0.9999

    assert open_bundle(shop.models_path, "search").params["doc_tower"] == "tuned"
    from tests.test_distil import retrain_settings

    asked = retrain_settings(shop, monkeypatch)
    assert (asked.doc_tower, asked.tower_distill) == ("tuned", 0.0)  # retraining keeps the choice

    with pytest.raises(SearchDataError, match="'e5' .language zh., which is frozen"):
        SearchTraining(doc_tower="tuned").config("zh")
    with pytest.raises(SearchDataError, match="it needs fine-tuning"):
        SearchTraining(doc_tower="tuned", fine_tune=False).config("en")
    with pytest.raises(ValueError, match="with --doc-tower tuned"):
        SearchTraining(tower_distill=1.0)


def test_the_margin_term_moves_the_students_margin_toward_the_teachers(tmp_path: Path) -> None:
    """One query, a positive and a negative; the teacher prefers the negative by a wide margin. With the
    contrastive term alone the positive gains on the negative; with a heavy margin-MSE term it loses ground."""
    import copy

    from shoprank.encoders.biencoder import BiEncoder, BiEncoderTrainConfig, PairExample, fine_tune_biencoder
    from shoprank.training.loop import TrainConfig

    start = BiEncoder.load(make_tower(tmp_path / "t", seed=1, layers=2), max_length=16)

    def margin(encoder: BiEncoder) -> float:
        q, p, n = encoder.model.encode(["cordless drill", "drill kit", "garden hose"], normalize_embeddings=True)
        return float(q @ p - q @ n)

    def trained(weight: float) -> float:
        encoder = copy.deepcopy(start)
        examples = [PairExample("cordless drill", "drill kit", ["garden hose"], teacher=[-5.0, 5.0])] * 8
        config = BiEncoderTrainConfig(train=TrainConfig(epochs=6, batch_size=4, learning_rate=1e-3, dropout=0.0,
                                                        freeze="none", warmup_ratio=0.0, patience=0),
                                      distill_weight=weight, max_length=16)
        fine_tune_biencoder(encoder, examples, config, validate=None, progress=False)
        return margin(encoder)

    before = margin(start)
    assert trained(0.0) > before
    assert trained(50.0) < before
