"""Request counts, latency histograms and model versions in the Prometheus text format (no dependency)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram; +Inf is implied."""


def _labels(pairs: dict[str, str]) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs.items()) + "}"


class Metrics:
    """Counters and histograms kept in memory for one process. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self.counters: dict[str, int] = defaultdict(int)
        self.in_flight = 0

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, method, str(status))] += 1
            buckets = self._buckets.get(endpoint)
            if buckets is None:
                buckets = self._buckets[endpoint] = [0] * (len(BUCKETS) + 1)
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[endpoint] += seconds
            self._counts[endpoint] += 1

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount

    def render(self, models: Iterable[tuple[str, str, str, str]] = ()) -> str:
        """The exposition text. ``models`` yields (shop, kind, version, state) for the model-info gauge."""
        lines: list[str] = []
        with self._lock:
            lines += ["# HELP shoprank_requests_total HTTP requests answered, by endpoint, method and status.",
                      "# TYPE shoprank_requests_total counter"]
            for (endpoint, method, status), n in sorted(self.requests.items()):
                labels = _labels({"endpoint": endpoint, "method": method, "status": status})
                lines.append(f"shoprank_requests_total{labels} {n}")
            lines += ["# HELP shoprank_request_duration_seconds Time to answer a request, by endpoint.",
                      "# TYPE shoprank_request_duration_seconds histogram"]
            for endpoint in sorted(self._buckets):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), self._buckets[endpoint], strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        f"shoprank_request_duration_seconds_bucket{_labels({'endpoint': endpoint, 'le': le})} {running}"
                    )
                lines.append(f"shoprank_request_duration_seconds_sum{_labels({'endpoint': endpoint})} "
                             f"{self._sums[endpoint]:.6f}")
                lines.append(f"shoprank_request_duration_seconds_count{_labels({'endpoint': endpoint})} "
                             f"{self._counts[endpoint]}")
            lines += ["# HELP shoprank_in_flight_requests Requests being answered now.",
                      "# TYPE shoprank_in_flight_requests gauge", f"shoprank_in_flight_requests {self.in_flight}"]
            for name, n in sorted(self.counters.items()):
                lines += [f"# TYPE shoprank_{name}_total counter", f"shoprank_{name}_total {n}"]
        lines += ["# HELP shoprank_model_info The model bundle each shop serves (1 = serving, 0 = none or failed).",
                  "# TYPE shoprank_model_info gauge"]
        for shop, kind, version, state in models:
            value = 1 if state == "ready" else 0
            labels = _labels({"shop": shop, "kind": kind, "version": version, "state": state})
            lines.append(f"shoprank_model_info{labels} {value}")
        return "\n".join(lines) + "\n"
