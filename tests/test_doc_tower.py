"""The ONNX document tower against PyTorch on a tiny BERT made here: the fused export, length bucketing that
keeps input order, and BiEncoder's fast path (cached export, small calls, weights tuned in memory, fallback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from shoprank.encoders import onnx_docs  # noqa: E402
from shoprank.encoders.onnx_docs import OnnxDocTower, cached_export, export_doc_tower  # noqa: E402
from tests.test_query_tower import make_tower  # noqa: E402

TEXTS = ["cordless drill", "Garden hose 50 ft", "chrome faucet kit", "ladder", "20v drill kit chrome ladder hose",
         "", "drill drill drill drill drill drill drill drill drill drill drill drill drill drill drill drill", "kit"]


@pytest.fixture(scope="module")
def tower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tower(tmp_path_factory.mktemp("tiny-docs"))


def pytorch_docs(folder: Path, texts: list[str]) -> np.ndarray:
    from shoprank.encoders.biencoder import BiEncoder

    encoder = BiEncoder.load(folder, max_length=16)
    encoder.fast_docs = None
    return encoder.encode_docs(texts)


def test_fused_export_embeds_like_pytorch_in_input_order(tower: Path, tmp_path: Path) -> None:
    info = export_doc_tower(tower, tmp_path / "onnx", 16, min_cosine=-1.0)  # keep int8 whatever it measures
    assert info.quantized and info.max_length == 16 and info.format == onnx_docs.FORMAT
    docs = OnnxDocTower.load(tmp_path / "onnx", threads=1)
    docs.batch_size = 3  # several buckets of different widths
    got = docs.encode_docs(TEXTS)
    want = pytorch_docs(tower, TEXTS)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert np.min(np.sum(got * want, axis=1)) >= 0.98
    docs.bucket = False  # input order, padded per batch: the same vectors up to int8 batch effects
    assert np.min(np.sum(docs.encode_docs(TEXTS) * got, axis=1)) >= 0.98
    assert docs.encode_docs([]).shape == (0, got.shape[1])


def test_every_matrix_product_goes_int8_only_past_the_stricter_floor(tower: Path, tmp_path: Path) -> None:
    import onnx

    def float_matmuls(folder: Path) -> int:
        return sum(n.op_type == "MatMul" for n in onnx.load(str(folder / onnx_docs.MODEL)).graph.node)

    every = export_doc_tower(tower, tmp_path / "all", 16, min_cosine=-1.0, min_cosine_all=-1.0)
    partial = export_doc_tower(tower, tmp_path / "partial", 16, min_cosine=-1.0, min_cosine_all=2.0)
    assert (every.int8, partial.int8) == ("all", "partial") and every.quantized and partial.quantized
    assert float_matmuls(tmp_path / "all") == 0 < float_matmuls(tmp_path / "partial")  # layer 0, FF outputs
    assert every.min_cosine == every.int8_all_min_cosine and partial.min_cosine == partial.int8_min_cosine
    got = OnnxDocTower.load(tmp_path / "all", threads=1).encode_docs(TEXTS)
    assert np.min(np.sum(got * pytorch_docs(tower, TEXTS), axis=1)) >= 0.97


def test_float_graph_kept_when_int8_falls_short(tower: Path, tmp_path: Path) -> None:
    info = export_doc_tower(tower, tmp_path / "onnx", 16, min_cosine=2.0)  # no cosine reaches 2
    assert not info.quantized and info.int8 == "none" and info.min_cosine >= 0.9999
    got = OnnxDocTower.load(tmp_path / "onnx").encode_docs(TEXTS)
    np.testing.assert_allclose(got, pytorch_docs(tower, TEXTS), atol=2e-4)


def test_cached_export_is_made_once(tower: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cached_export(tower, tmp_path, 16)
    monkeypatch.setattr(onnx_docs, "export_doc_tower", lambda *a, **k: pytest.fail("exported twice"))
    assert cached_export(tower, tmp_path, 16) == first and first.name.startswith("doc-onnx-")


def test_biencoder_fast_path(tower: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoprank.encoders.biencoder import BiEncoder

    monkeypatch.setenv("SHOPRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_docs, "EXPORT_MIN", 5)
    encoder = BiEncoder.load(tower, max_length=16)
    want = pytorch_docs(tower, TEXTS)
    small = encoder.encode_docs(TEXTS[:2])  # below EXPORT_MIN, nothing cached: PyTorch, no export made
    np.testing.assert_allclose(small, want[:2], atol=1e-5)
    assert not list((tmp_path / "cache").glob("doc-onnx-*")) and not encoder.fast_docs.towers
    got = encoder.encode_docs(TEXTS)  # large enough: exported, cached, served by ONNX
    assert encoder.fast_docs.towers and list((tmp_path / "cache").glob("doc-onnx-*-L16"))
    assert np.min(np.sum(got * want, axis=1)) >= 0.98
    assert encoder.fast_docs.encode(TEXTS[:1]) is not None  # once cached, small calls use it too

    import copy

    import torch

    twin = copy.deepcopy(encoder)  # what a trainer copies before tuning: its own model, no shared sessions
    assert twin.fast_docs.model is twin.model and not twin.fast_docs.towers
    np.testing.assert_allclose(twin.encode_docs(TEXTS), got, atol=1e-6)  # same weights: the cached export
    with torch.no_grad():
        next(twin.model.parameters()).add_(0.5)
    assert twin.fast_docs.encode(TEXTS) is None and encoder.fast_docs.encode(TEXTS) is not None
    with torch.no_grad():  # weights tuned in memory: the export is of other weights, PyTorch takes over
        next(encoder.model.parameters()).add_(0.5)
    assert encoder.fast_docs.encode(TEXTS) is None
    np.testing.assert_allclose(encoder.encode_docs(TEXTS), encoder._encode(TEXTS, False), atol=1e-6)


def test_failed_export_leaves_pytorch_embedding(tower: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoprank.encoders.biencoder import BiEncoder

    monkeypatch.setenv("SHOPRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_docs, "EXPORT_MIN", 1)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(onnx_docs, "export_doc_tower", broken)
    encoder = BiEncoder.load(tower, max_length=16)
    np.testing.assert_allclose(encoder.encode_docs(TEXTS), pytorch_docs(tower, TEXTS), atol=1e-5)
    assert "no exporter here" in encoder.fast_docs.failed
    monkeypatch.setenv(onnx_docs.BACKEND_ENV, "torch")
    assert BiEncoder.load(tower, max_length=16).fast_docs.tower(10_000) is None
