"""SASRec on a tiny log with a known answer: users always buy item k+1 after item k."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.recommend.evaluate import leave_one_out, mask_seen
from shoprank.recommend.interactions import Sequences, pad_left
from shoprank.recommend.sasrec import SASRec, SASRecConfig
from shoprank.recommend.training import profile_config, score_histories, train_sasrec

N_ITEMS = 30


def successor_log(n_users: int = 300, length: int = 6, seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    starts = rng.integers(1, N_ITEMS - length + 2, n_users)
    items = [np.arange(s, s + length, dtype=np.int64) for s in starts]
    types = [np.full(length, 4, dtype=np.int64) for _ in items]  # purchases
    return Sequences([f"u{i}" for i in range(n_users)], items, types)


def tiny_config(negatives: int) -> object:
    return profile_config("quick", N_ITEMS, 0, d_model=32, n_layers=1, n_heads=1, dropout=0.1, id_dropout=0.0,
                          epochs=15, batch_size=32, learning_rate=5e-3, patience=15, negatives=negatives,
                          threads=1, max_len=8)


@pytest.mark.parametrize("negatives", [0, 8])
def test_learns_the_successor(negatives: int) -> None:
    split = leave_one_out(successor_log(), N_ITEMS)
    model, summary = train_sasrec(split.train, split.valid_histories, split.valid_targets, None,
                                  tiny_config(negatives), progress=False)
    scores = mask_seen(score_histories(model, split.test_histories.items, split.test_histories.types),
                       split.test_histories.items)
    seen = split.train_counts[split.test_targets] > 0  # items 29 and 30 never occur in training
    top1 = scores.argmax(axis=1)
    assert (top1 == split.test_targets)[seen].mean() > 0.95
    assert summary["best_valid_ndcg@10"] > 0.8


def test_shapes_and_padding_do_not_change_scores() -> None:
    model = SASRec(SASRecConfig(n_items=N_ITEMS, text_dim=0, d_model=16, n_heads=2, max_len=10)).eval()
    hist = [np.array([3, 4, 5]), np.array([7])]
    types = [np.array([1, 2, 4]), np.array([4])]
    a = score_histories(model, hist, types)
    b = score_histories(model, hist[:1], types[:1])  # different padding width
    assert a.shape == (2, N_ITEMS + 1) and np.isneginf(a[:, 0]).all()
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-5)
    assert pad_left([np.array([1, 2, 3])], 2).tolist() == [[2, 3]]


def test_grown_catalogue_scores_new_items_from_text_alone() -> None:
    import torch

    model = SASRec(SASRecConfig(n_items=4, text_dim=8, d_model=16, n_heads=2)).eval()
    model.items.text_vectors = torch.randn(5, 8)
    model.add_items(torch.randn(2, 8))
    assert model.cfg.n_items == 6
    scores = score_histories(model, [np.array([1, 2])], [np.array([1, 1])])
    assert scores.shape == (1, 7) and np.isfinite(scores[0, 1:]).all()
    assert torch.all(model.items.id.weight[5:] == 0)


def test_config_errors_say_how_to_fix() -> None:
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SASRecConfig(n_items=3, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="valid profiles"):
        profile_config("huge", 3, 0)


def test_demo_profile_is_the_quick_one_shortened() -> None:
    from shoprank.recommend.training import profile_settings
    from shoprank.search.train import profile_config as search_profile

    demo, quick = profile_config("demo", 5, 0), profile_config("quick", 5, 0)
    assert demo.train.epochs < quick.train.epochs and demo.model == quick.model
    assert profile_settings("demo")["text"]["max_length"] < profile_settings("quick")["text"]["max_length"]
    s_demo, s_quick = search_profile("demo"), search_profile("quick")
    assert s_demo.profile == "demo" and s_demo.stack.doc_max_length == 16 < s_quick.stack.doc_max_length
    assert s_demo.max_biencoder_examples == s_quick.max_biencoder_examples


def test_item_vector_cache_is_keyed_by_text_length(tmp_path) -> None:
    from shoprank.recommend.text import cached_item_vectors

    texts = ["red drill", "blue saw"]
    a = cached_item_vectors(texts, "hash:16", tmp_path, max_length=64)
    b = cached_item_vectors(texts, "hash:16", tmp_path, max_length=32)
    assert np.allclose(a, b) and len(list(tmp_path.glob("item-vectors-*.npy"))) == 2
