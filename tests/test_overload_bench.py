"""The overload bench's figures on known shots (the run itself is ``python -m bench.overload``)."""

from __future__ import annotations

from bench.overload import Schedule, Shot, phase_figures, recovery_seconds, windows


def test_schedule_sends_each_phase_at_its_rate() -> None:
    times = Schedule(capacity=10, factor=2, baseline=2, overload=3, recovery=1).times()
    assert [sum(p == phase for _, p in times) for phase in ("baseline", "overload", "recovery")] == [20, 60, 10]
    assert times[20] == (2.0, "overload") and times[-1][0] < 6


def test_recovery_is_the_first_of_the_stable_normal_windows() -> None:
    shots = []
    for second, (latency_ms, status) in enumerate([(900, 503), (400, 200), (30, 200), (10, 200), (12, 200),
                                                   (200, 200), (10, 200), (11, 200), (9, 200), (10, 200)]):
        for k in range(4):
            shots.append(Shot(due=10 + second + k / 4, phase="recovery", latency=latency_ms / 1000,
                              status=status if k == 0 else 200, retry_after=status == 503))
    after = windows(shots, 10, 20)
    assert [w["refused"] for w in after[:2]] == [1, 0] and after[0]["p95_ms"] == 900
    assert recovery_seconds(after, threshold_ms=20, stable=3) == 6.0  # 3-4 normal, 5 slow again, 6-8 normal
    assert recovery_seconds(after, threshold_ms=20, stable=2) == 3.0
    assert recovery_seconds(after, threshold_ms=5, stable=1) is None
    figures = phase_figures(shots + [Shot(1, "recovery", 0.01, 500), Shot(2, "recovery", 10, 0)], "recovery", 10)
    assert figures["refused_503"] == 1 and figures["refused_with_retry_after"] == 1
    assert figures["other_5xx"] == 1 and figures["no_answer"] == 1 and figures["sent"] == 42
