"""Distilling a shallower document tower from a tiny BERT made here: the student keeps the layers it is told,
learns toward the teacher's vectors on held-out texts, saves as a model folder the ONNX export reads, and
refuses settings it cannot honour."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from shoprank.encoders.distil import DistilConfig, distil_doc_tower, make_student, read_report
from shoprank.training.loop import TrainConfig
from tests.test_query_tower import make_tower

WORDS = "cordless drill garden hose ladder faucet 20v kit ft chrome".split()


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 8))) for _ in range(n)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer tiny BERT whose middle layer matters (random layers are nearly the identity: scaled up)."""
    import torch
    from sentence_transformers import SentenceTransformer

    folder = make_tower(tmp_path_factory.mktemp("teacher"), seed=3, layers=3)
    model = SentenceTransformer(str(folder), device="cpu")
    middle = model[0].auto_model.encoder.layer[1]
    with torch.no_grad():
        for dense in (middle.intermediate.dense, middle.output.dense, middle.attention.output.dense):
            dense.weight.mul_(6.0)
    model.save(str(folder))
    return folder


def config(layers: tuple[int, ...], epochs: int = 4) -> DistilConfig:
    return DistilConfig(layers=layers, max_texts=400, valid_share=0.1, max_length=16,
                        train=TrainConfig(epochs=epochs, batch_size=16, learning_rate=3e-3, dropout=0.0,
                                          warmup_ratio=0.05, patience=4))


def test_a_student_that_keeps_every_layer_is_the_teacher(teacher: Path, tmp_path: Path) -> None:
    report = distil_doc_tower(teacher, texts(100), tmp_path / "s", config((0, 1, 2), epochs=1), progress=False)
    assert report.cosine_before >= 0.9999 and report.teacher_layers == 3 and report.layers == [0, 1, 2]


def test_a_shallower_student_learns_toward_the_teacher_and_exports(teacher: Path, tmp_path: Path) -> None:
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.encoders.onnx_docs import OnnxDocTower, cached_export

    data = texts(500)
    report = distil_doc_tower(teacher, data, tmp_path / "student", config((0, 2)), progress=False)
    assert report.texts + report.valid_texts == 400 and report.valid_texts == 40  # max_texts, valid_share
    assert report.cosine >= report.cosine_before + 0.05 and report.cosine >= 0.9, report
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["num_hidden_layers"] == 2
    assert read_report(tmp_path / "student") == report and read_report(teacher) is None

    student = BiEncoder.load(tmp_path / "student", max_length=16)
    student.fast_docs = None
    unseen = texts(60, seed=9)
    want = BiEncoder.load(teacher, max_length=16)
    want.fast_docs = None
    cos = np.sum(student.encode_docs(unseen) * want.encode_docs(unseen), axis=1)
    assert cos.mean() >= report.cosine - 0.05  # the texts it never saw, as close as the validation ones
    onnx = OnnxDocTower.load(cached_export(tmp_path / "student", tmp_path / "cache", 16), threads=1)
    assert np.min(np.sum(onnx.encode_docs(unseen) * student.encode_docs(unseen), axis=1)) >= 0.98


def test_teacher_vectors_given_are_the_targets(teacher: Path, tmp_path: Path) -> None:
    data = texts(120)
    with pytest.raises(ValueError, match="119 teacher vectors for 120 texts"):
        distil_doc_tower(teacher, data, tmp_path / "a", config((0, 1, 2), 1), np.zeros((119, 32)), progress=False)
    opposite = -make_vectors(teacher, data)  # targets the teacher itself is furthest from
    report = distil_doc_tower(teacher, data, tmp_path / "b", config((0, 1, 2), 1), opposite, progress=False)
    assert report.cosine_before <= -0.9999


def make_vectors(folder: Path, data: list[str]) -> np.ndarray:
    from shoprank.encoders.biencoder import BiEncoder

    encoder = BiEncoder.load(folder, max_length=16)
    encoder.fast_docs = None
    return encoder.encode_docs(data)


def test_bad_settings_are_refused_clearly(teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the teacher has 3 layers"):
        make_student(teacher, (0, 3), 16)
    with pytest.raises(ValueError, match="distinct layer numbers"):
        DistilConfig(layers=(1, 1))
    with pytest.raises(ValueError, match="distinct layer numbers"):
        DistilConfig(layers=())
    with pytest.raises(ValueError, match="at least 20 product texts"):
        distil_doc_tower(teacher, texts(5), tmp_path / "c", config((0,)), progress=False)


def test_search_trains_and_serves_with_a_distilled_document_tower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``--doc-tower distilled``: the bundle ships its own tower (the layers asked for, its report), the engine
    embeds a product upserted later with it, and the command line passes the option through."""
    from shoprank.bundles import open_bundle
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.search import SearchEngine
    from shoprank.search.publish import SearchTraining, train_and_publish
    from shoprank.shops import Shop
    from tests.test_search_helpers import tiny_catalogue, tiny_judgments

    monkeypatch.setenv("SHOPRANK_BASE_MODEL", str(make_tower(tmp_path / "base", seed=3, layers=3)))
    monkeypatch.setenv("SHOPRANK_CACHE", str(tmp_path / "cache"))
    shop = Shop("hardware", tmp_path / "home")
    with shop.store() as store:
        store.upsert_products(tiny_catalogue())
        store.upsert_judgments(tiny_judgments())
    published = train_and_publish(shop, SearchTraining(profile="quick", holdout=0.25, cross_encoder=False,
                                                       doc_tower="distilled", distil_layers=(0, 2)), progress=False)
    said = capsys.readouterr().out
    assert "distilling a 2-layer document tower (layers 0, 2 of the base encoder) on 48 product texts" in said
    tower = published.summary["doc_tower"]
    assert tower["kind"] == "distilled" and tower["layers"] == [0, 2] and tower["teacher_layers"] == 3
    folder = open_bundle(shop.models_path, "search").path
    assert json.loads((folder / "doc_tower" / "config.json").read_text())["num_hidden_layers"] == 2
    assert read_report(folder / "doc_tower").layers == [0, 2]

    engine = SearchEngine.load(shop)
    assert engine.search("cordless drill", k=3)[0]
    from shoprank.data.records import Product

    new = Product(id="drill-new", title="cordless drill kit chrome", language="en")
    engine.upsert_products([new])
    student = BiEncoder.load(folder / "doc_tower", max_length=engine.stack.config.doc_max_length)
    student.fast_docs = None
    row = engine.stack.catalog.row_of["drill-new"]
    assert float(engine.stack.dense.vectors[row] @ student.encode_docs([new.text()])[0]) >= 0.9999

    params = open_bundle(shop.models_path, "search").params
    assert (params["doc_tower"], params["distil_layers"]) == ("distilled", [0, 2])
    asked = retrain_settings(shop, monkeypatch)
    assert (asked.doc_tower, asked.distil_layers) == ("distilled", (0, 2))  # retraining keeps the choice

    with pytest.raises(ValueError, match="doc_tower must be one of base, distilled"):
        SearchTraining(doc_tower="small")
    from shoprank.search.publish import SearchDataError

    with pytest.raises(SearchDataError, match="'e5' .language zh., which cannot be distilled"):
        SearchTraining(doc_tower="distilled").config("zh")


def retrain_settings(shop: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """The SearchTraining automatic retraining asks for on ``shop`` (the training itself is not run)."""
    from shoprank.retrain import loop
    from shoprank.search import publish

    class Asked(Exception):
        pass

    asked: list[object] = []

    def train_stack(shop: object, training: object, **kwargs: object) -> None:
        asked.append(training)
        raise Asked  # only the settings are checked

    monkeypatch.setattr(publish, "train_stack", train_stack)
    with pytest.raises(Asked):
        loop.train_search_candidate(shop, 0.0, loop.RetrainConfig())
    return asked[0]
