"""Scenario 7, oversized input, against a real server process: refused before being read whole, memory bounded.

The long run, with the peak memory of each case and 32 bodies at once, is ``python -m bench.oversized``.
"""

from __future__ import annotations

from bench.oversized import MB, measure


def test_oversized_input_is_refused_early_with_the_error_shape_and_memory_stays_bounded() -> None:
    measured = measure(["declared-100mb", "events-1m-chunked", "description-10mb", "nested", "query-1mb",
                        "batch-10001"])
    assert measured.server_alive
    by_name = {r.name: r for r in measured.results}
    for result in measured.results:
        assert result.ok, (result.name, result.answers)  # expected status, JSON error shape
        assert result.peak_above_mb < 100, (result.name, result.peak_mb, result.rss_before_mb)
    assert by_name["declared-100mb"].answers[0].code == "body_too_large"
    assert by_name["declared-100mb"].answers[0].sent < 10 * MB  # refused from Content-Length, not read
    chunked = by_name["events-1m-chunked"].answers[0]
    assert chunked.code == "body_too_large" and chunked.sent < 20 * MB  # refused while streaming
    assert by_name["query-1mb"].answers[0].code == "bad_request"
    assert by_name["batch-10001"].answers[0].code == "batch_too_large"
