"""Every "for you" candidate source through the one behaviour suite, on a checkerboard catalogue.

Items 1-4 form block A, items 5-8 block B: users buy within one block, texts are the block's direction. A
history of three items of a block leaves the fourth as the one known answer (implicit's held-out diagonal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from shoprank.cascade.base import Request
from shoprank.data.records import Event
from shoprank.recommend import sources as src
from shoprank.recommend.interactions import Catalogue, Sequences, history_arrays
from shoprank.recommend.item2item import covisitation
from shoprank.recommend.service import covisit_matrix
from tests.source_suite import CandidateSourceSuite

N = 8
CATALOGUE = Catalogue()
for _i in range(1, N + 1):
    CATALOGUE.add(f"i{_i}")
TEXT = np.zeros((N + 1, 4), dtype=np.float32)
TEXT[1:5, 0], TEXT[5:, 1] = 1.0, 1.0
TEXT[1:, 2] = np.linspace(0.0, 0.1, N)  # no two items quite alike
TEXT[1:] /= np.linalg.norm(TEXT[1:], axis=1, keepdims=True)
COUNTS = np.array([0, 9, 9, 9, 1, 9, 9, 9, 1], dtype=np.float32)  # items 4 and 8 are cold
TRENDING = np.array([0, 5, 1, 1, 1, 9, 1, 1, 1], dtype=np.float32)
POPULARITY = np.ones(N + 1, dtype=np.float32)


def covisit():  # noqa: ANN201
    rng = np.random.default_rng(0)
    seqs = [rng.permutation(block) + 1 for _ in range(20) for block in (np.arange(4), np.arange(4, 8))]
    train = Sequences([f"u{n}" for n in range(len(seqs))], seqs, [np.ones(4, np.int64) for _ in seqs])
    return covisit_matrix(covisitation(train, N, window=3, keep=N))


def resolve(requests: Sequence[Request]) -> src.Histories:
    items, types, exclude = [], [], []
    for request in requests:
        h, t = history_arrays(list(request.history or ()), CATALOGUE)
        items.append(h)
        types.append(t)
        exclude.append(np.array([CATALOGUE.index[i] for i in request.exclude], dtype=np.int64))
    return src.Histories(items, types, exclude)


def request(items: Sequence[int], exclude: Sequence[int] = ()) -> Request:
    history = tuple(Event(f"e{n}", "u", f"i{i}", "purchase", 1.0 + n) for n, i in enumerate(items))
    return Request("recommend", user_id="u", history=history, exclude=frozenset(f"i{i}" for i in exclude))


REQUESTS = [request([1, 2, 3]), request([5, 6, 7]), request([1, 2], exclude=[3]), request([])]
BLOCK_ANSWERS = {0: 4, 1: 8, 2: 4}  # the held-out diagonal


class DotModel:
    """A stand-in with SASRec's scoring interface: the mean of the history's item vectors against every item."""

    class cfg:  # noqa: N801
        max_len = 10

    def score(self, items, types, vectors):  # noqa: ANN001, ANN201
        import torch

        mask = (items > 0).float().unsqueeze(-1)  # (B, L, 1)
        user = (vectors[items] * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, d)
        scores = user @ vectors.T
        scores[:, 0] = -torch.inf
        return scores


class SourceSuite(CandidateSourceSuite):
    answers = BLOCK_ANSWERS

    def requests(self) -> Sequence[Request]:
        return REQUESTS

    def forbidden(self, request: Request) -> set[int]:
        return {CATALOGUE.index[e.item_id] for e in request.history or ()} | {CATALOGUE.index[i]
                                                                            for i in request.exclude}

    def best(self, request: Request) -> int | None:
        return self.answers.get(REQUESTS.index(request))


class TestSequenceSource(SourceSuite):
    def source(self) -> src.Source:
        import torch

        return src.SequenceSource(DotModel(), torch.from_numpy(TEXT), resolve)


class TestCovisitSource(SourceSuite):
    def source(self) -> src.Source:
        return src.CovisitSource(covisit(), resolve)


class TestItemToItemSource(SourceSuite):
    def source(self) -> src.Source:
        return src.ItemToItemSource(covisit(), resolve)


class TestTextSource(SourceSuite):
    def source(self) -> src.Source:
        return src.TextSource(TEXT, resolve)


class TestColdSource(SourceSuite):
    def source(self) -> src.Source:
        return src.ColdSource(TEXT, COUNTS, resolve)

    def test_only_cold_items(self) -> None:
        got = self.source().retrieve(REQUESTS, 5)
        assert set(got.ids[got.ids >= 0].tolist()) <= {4, 8}


class TestTrendingSource(SourceSuite):
    answers = {0: 5, 1: 1, 2: 5, 3: 5}  # the most trending item the user does not have

    def source(self) -> src.Source:
        return src.TrendingSource(TRENDING, POPULARITY, resolve)


def test_a_new_user_gets_nothing_from_history_sources() -> None:
    for source in (src.CovisitSource(covisit(), resolve), src.TextSource(TEXT, resolve),
                   src.ColdSource(TEXT, COUNTS, resolve)):
        assert (source.retrieve([request([])], 5).ids < 0).all()


def test_a_source_without_a_resolver_says_so() -> None:
    with pytest.raises(RuntimeError, match="resolver"):
        src.TextSource(TEXT).retrieve(REQUESTS, 3)


def test_the_half_precision_scan_keeps_the_float32_lists_and_candidate_scores() -> None:
    """Past 1,024 items a single user's text scores come from half-precision vectors; every item that could be
    among the best ``EXACT_BAND`` and every refined candidate must carry the float32 score."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 64))
    vectors = centres[rng.integers(0, 20, 3000)] + 0.7 * rng.normal(size=(3000, 64))
    text = np.vstack([np.zeros((1, 64)), vectors / np.linalg.norm(vectors, axis=1, keepdims=True)]).astype(np.float32)
    source = src.TextSource(text)
    assert source._half is not None  # the path under test is on
    users = [src.Histories([rng.integers(1, 3001, n)], [np.ones(n, np.int64)]) for n in (1, 3, 12)]
    exact_batch = src.Histories([h.items[0] for h in users] * 2, [h.types[0] for h in users] * 2)  # > HALF_ROWS
    exact = source.score(exact_batch)[: len(users)]
    for n, histories in enumerate(users):
        half = source.score(histories)
        for k in (10, 100, src.EXACT_BAND):
            np.testing.assert_array_equal(source.top(half, k).ids, source.top(exact[n : n + 1], k).ids)
        candidates = rng.choice(np.arange(1, 3001), size=(1, 400), replace=False)
        source.refine(histories, half, candidates)
        cols = candidates[0][np.isfinite(half[0, candidates[0]])]
        np.testing.assert_allclose(half[0, cols], exact[n, cols], atol=1e-6, rtol=0)
        long = source.retrieve_histories(histories, 2 * src.EXACT_BAND)  # past the band: float32 throughout
        np.testing.assert_array_equal(long.ids, source.top(exact[n : n + 1], 2 * src.EXACT_BAND).ids)
        np.testing.assert_allclose(long.scores, source.top(exact[n : n + 1], 2 * src.EXACT_BAND).scores,
                                   atol=1e-6, rtol=0)  # one user against six: the BLAS call may differ by an ulp
        scored = np.isfinite(exact[n])  # history items and the padding column are -inf in both
        np.testing.assert_array_equal(np.isfinite(half[0]), scored)
        assert np.abs(half[0, scored] - exact[n, scored]).max() < src.HALF_ERROR
