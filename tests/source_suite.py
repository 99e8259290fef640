"""One behaviour suite for every candidate source (the cascade's ``CandidateSource`` contract).

A source's test class subclasses :class:`CandidateSourceSuite` and says how to build the source, which requests to
ask, what each request must never get back, and the known best answer of each request on its tiny data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shoprank.cascade.base import Candidates, CandidateSource, Request

K = 5


class CandidateSourceSuite:
    """Shapes, padding, no duplicates, best first, forbidden items never returned, known answers, batch = one."""

    def source(self) -> CandidateSource:
        raise NotImplementedError

    def requests(self) -> Sequence[Request]:
        raise NotImplementedError

    def forbidden(self, request: Request) -> set[int]:
        """Catalogue indices the request must not get back (its history, its ``exclude``)."""
        raise NotImplementedError

    def best(self, request: Request) -> int | None:
        """The index the source must rank first for ``request`` on the tiny data (None: no known answer)."""
        raise NotImplementedError

    def _got(self, k: int = K) -> Candidates:
        return self.source().retrieve(list(self.requests()), k)

    def test_is_a_candidate_source_with_a_name(self) -> None:
        source = self.source()
        assert isinstance(source, CandidateSource) and source.name

    def test_shapes_and_padding(self) -> None:
        got = self._got()
        assert got.ids.shape == got.scores.shape == (len(self.requests()), K)
        assert got.ids.dtype == np.int64 and got.scores.dtype == np.float32
        assert np.array_equal(got.ids < 0, ~np.isfinite(got.scores))  # -1 exactly where the score is -inf
        for row in got.ids:  # padding only at the end of a row
            pad = np.flatnonzero(row < 0)
            assert not len(pad) or pad[0] == len(row) - len(pad)

    def test_no_duplicates_in_a_row(self) -> None:
        for row in self._got().ids:
            kept = row[row >= 0]
            assert len(set(kept.tolist())) == len(kept)

    def test_best_first(self) -> None:
        got = self._got()
        for n in range(len(got.ids)):
            _, scores = got.row(n)
            assert np.all(np.diff(scores) <= 0)

    def test_forbidden_items_never_come_back(self) -> None:
        got = self._got(k=50)  # deeper than the catalogue: every allowed item may come back
        for n, request in enumerate(self.requests()):
            ids, _ = got.row(n)
            assert not set(ids.tolist()) & self.forbidden(request) and 0 not in ids

    def test_known_answers(self) -> None:
        got = self._got()
        checked = 0
        for n, request in enumerate(self.requests()):
            expected = self.best(request)
            if expected is not None:
                assert got.ids[n, 0] == expected, f"request {n}: {got.ids[n].tolist()}, expected {expected} first"
                checked += 1
        assert checked, "the suite needs at least one known answer"

    def test_a_batch_answers_as_one_request_at_a_time(self) -> None:
        source, requests = self.source(), list(self.requests())
        batch = source.retrieve(requests, K)
        for n, request in enumerate(requests):
            one = source.retrieve([request], K)
            assert one.ids[0].tolist() == batch.ids[n].tolist()
            np.testing.assert_allclose(one.scores[0], batch.scores[n], rtol=1e-5)

    def test_fewer_than_k_is_padded_not_invented(self) -> None:
        got = self._got(k=200)
        assert (got.ids < 0).any()  # a tiny catalogue cannot fill 200 places
