"""Scenario 12, overload: twice the capacity, then back to normal load; refusals, latency, memory and recovery.

    python -m bench.overload --home /tmp/demohome --shop games            # capacity from the serving bench
    python -m bench.overload --home H --shop games --capacity 50 --overload 30 --recovery 40

One open-model schedule (requests leave at fixed times whatever the server does, see ``bench.serve``) in three
phases: ``--baseline`` seconds at the capacity, ``--overload`` seconds at ``--factor`` (2) times it, then
``--recovery`` seconds at the capacity again (baseline and recovery at ``--normal`` times the capacity
instead, e.g. 0.5 for everyday traffic below the knee). The capacity is the highest rate the serving benchmark held with
p99 under 100 ms (``bench/results/serve-SHOP-ENDPOINT.json``) unless ``--capacity`` says. The shop is copied
into a temporary home first (the store through SQLite's backup, the models and caches as files), so the
source home is only read.

Figures: per phase, answers by status (every non-200 must be 503 with Retry-After: no other 5xx, no
timeouts), latency of admitted requests (p50/p95/p99), the server's RSS (sampled every 0.5 s) and CPU; and the
recovery: seconds from the end of the overload until latency is back to normal, i.e. until the first of
``--stable`` consecutive one-second windows (by scheduled time) with no refusal and a p95 no higher than the
baseline's p99; and seconds until the server's requests in flight (``/metrics``) are back to the baseline's
most (its backlog drained).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHASES = ("baseline", "overload", "recovery")


@dataclass
class Shot:
    """One request: when it was due (seconds from the start of the schedule), its phase and what came back."""

    due: float
    phase: str
    latency: float = 0.0
    status: int = 0
    """0: no answer (timeout or connection error)."""
    retry_after: bool = False


@dataclass
class Schedule:
    capacity: float
    factor: float
    baseline: float
    overload: float
    recovery: float
    normal: float = 1.0
    """Baseline and recovery run at ``normal`` x capacity."""

    def phases(self) -> list[tuple[str, float, float]]:
        """(phase, rate, seconds)."""
        rate = self.capacity * self.normal
        return [("baseline", rate, self.baseline), ("overload", self.capacity * self.factor, self.overload),
                ("recovery", rate, self.recovery)]

    @property
    def overload_end(self) -> float:
        return self.baseline + self.overload

    def times(self) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        start = 0.0
        for phase, rate, seconds in self.phases():
            out += [(start + i / rate, phase) for i in range(int(rate * seconds))]
            start += seconds
        return out


# ----------------------------------------------------------------------------------------------- load
async def fire(url: str, key: str, paths: Sequence[str], schedule: Schedule, *, timeout: float,
               max_connections: int) -> list[Shot]:
    from bench.serve import ConnectionPool

    pool = ConnectionPool(url, key, timeout)
    slots = asyncio.Semaphore(max_connections)
    shots: list[Shot] = []

    async def one(path: str, shot: Shot, t0: float) -> None:
        async with slots:
            try:
                status, headers, _ = await pool.get(path)
                shot.status = status
                shot.retry_after = "retry-after" in headers
            except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                pass
            shot.latency = time.perf_counter() - t0 - shot.due

    tasks = []
    t0 = time.perf_counter() + 0.05
    for i, (due, phase) in enumerate(schedule.times()):
        delay = t0 + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shot = Shot(due, phase)
        shots.append(shot)
        tasks.append(asyncio.ensure_future(one(paths[i % len(paths)], shot, t0)))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    pool.close()
    return shots


class Sampler(threading.Thread):
    """The server's RSS and CPU seconds every half second, and its requests in flight (``/metrics``, exempt
    from admission) every quarter second, with the time from the schedule's start."""

    def __init__(self, pid: int, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.pid, self.url, self.key = pid, url, key
        self.t0 = time.perf_counter()
        self.samples: list[tuple[float, float, float]] = []
        self.in_flight: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        import httpx

        from bench.serve import cpu_seconds, rss_mb

        tick = 0
        with httpx.Client(headers={"Authorization": f"Bearer {self.key}"}, timeout=5) as client:
            while not self.halt.wait(0.25):
                now = time.perf_counter() - self.t0
                try:
                    text = client.get(f"{self.url}/metrics").text
                    self.in_flight += [(now, int(float(line.split()[-1]))) for line in text.splitlines()
                                       if line.startswith("shoprank_in_flight_requests ")]
                except (httpx.HTTPError, ValueError):
                    pass
                tick += 1
                if tick % 2:
                    continue
                rss, cpu = rss_mb(self.pid), cpu_seconds(self.pid)
                if rss is None or cpu is None:
                    return
                self.samples.append((time.perf_counter() - self.t0, rss, cpu))


def drain_seconds(in_flight: Sequence[tuple[float, int]], schedule: Schedule) -> tuple[int | None, float | None]:
    """The most requests in flight during the baseline, and seconds from the overload's end until the server
    is back to at most that many (its backlog drained)."""
    base = [n for t, n in in_flight if t < schedule.baseline]
    if not base:
        return None, None
    normal = max(base)
    after = [t for t, n in in_flight if t >= schedule.overload_end and n <= normal]
    return normal, (round(after[0] - schedule.overload_end, 2) if after else None)


# ----------------------------------------------------------------------------------------------- figures
def phase_figures(shots: Sequence[Shot], phase: str, seconds: float) -> dict[str, Any]:
    from bench.serve import percentile

    mine = [s for s in shots if s.phase == phase]
    ok = [s.latency * 1000 for s in mine if s.status == 200]
    refused = [s for s in mine if s.status == 503]
    statuses = Counter(s.status for s in mine)
    return {
        "sent": len(mine),
        "rate": round(len(mine) / seconds, 1) if seconds else 0.0,
        "answered_per_s": round(len(ok) / seconds, 1) if seconds else 0.0,
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "refused_503": len(refused),
        "refused_share": round(len(refused) / max(len(mine), 1), 4),
        "refused_with_retry_after": sum(s.retry_after for s in refused),
        "refusal_p50_ms": round(percentile([s.latency * 1000 for s in refused], 50), 2) if refused else None,
        "other_5xx": sum(n for k, n in statuses.items() if k >= 500 and k != 503),
        "other_4xx": sum(n for k, n in statuses.items() if 400 <= k < 500),
        "no_answer": statuses.get(0, 0),
        "p50_ms": round(percentile(ok, 50), 2) if ok else None,
        "p95_ms": round(percentile(ok, 95), 2) if ok else None,
        "p99_ms": round(percentile(ok, 99), 2) if ok else None,
    }


def windows(shots: Sequence[Shot], start: float, end: float, width: float = 1.0) -> list[dict[str, Any]]:
    """One-second windows (by due time) from ``start``: p95 of admitted latency, refusals, failures."""
    from bench.serve import percentile

    out = []
    t = start
    while t < end - 1e-9:
        mine = [s for s in shots if t <= s.due < t + width]
        ok = [s.latency * 1000 for s in mine if s.status == 200]
        out.append({"from_s": round(t - start, 3), "sent": len(mine), "ok": len(ok),
                    "refused": sum(s.status == 503 for s in mine),
                    "failed": sum(s.status not in (200, 503) for s in mine),
                    "p95_ms": round(percentile(ok, 95), 2) if ok else None})
        t += width
    return out


def recovery_seconds(after: Sequence[dict[str, Any]], threshold_ms: float, stable: int) -> float | None:
    """Seconds from the overload's end to the first of ``stable`` consecutive normal windows (None: never)."""
    def normal(w: dict[str, Any]) -> bool:
        return w["sent"] > 0 and w["refused"] == 0 and w["failed"] == 0 and w["p95_ms"] is not None \
            and w["p95_ms"] <= threshold_ms

    for i in range(len(after) - stable + 1):
        if all(normal(w) for w in after[i:i + stable]):
            return float(after[i]["from_s"])
    return None


def memory_figures(samples: Sequence[tuple[float, float, float]], schedule: Schedule) -> dict[str, Any]:
    bounds = {"baseline": (0.0, schedule.baseline), "overload": (schedule.baseline, schedule.overload_end),
              "recovery": (schedule.overload_end, schedule.overload_end + schedule.recovery)}
    out: dict[str, Any] = {}
    for phase, (a, b) in bounds.items():
        mine = [s for s in samples if a <= s[0] < b]
        if len(mine) >= 2:
            out[phase] = {"rss_max_mb": max(s[1] for s in mine), "rss_last_mb": mine[-1][1],
                          "cpu_percent": round(100 * (mine[-1][2] - mine[0][2]) / (mine[-1][0] - mine[0][0]), 1)}
    return out


# ----------------------------------------------------------------------------------------------- set-up
def capacity_from_serve_bench(shop: str, endpoint: str) -> float | None:
    from bench.common import RESULTS

    path = RESULTS / f"serve-{shop}-{endpoint}.json"
    if not path.is_file():
        return None
    held = json.loads(path.read_text()).get("held_rate")
    return float(held) if held else None


def main(argv: Sequence[str] | None = None) -> int:
    from bench.common import table, write_json
    from bench.serve import free_port, request_paths, start_server
    from shoprank.keys import KeyStore
    from shoprank.shops import Shop

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default=os.environ.get("SHOPRANK_HOME", "shoprank-data"),
                        help="the home holding the shop (only read: the shop is copied)")
    parser.add_argument("--shop", required=True)
    parser.add_argument("--endpoint", choices=["search", "recommend", "similar"], default="recommend")
    parser.add_argument("--capacity", type=float, default=None,
                        help="req/s (default: the serving bench's highest rate held, from bench/results)")
    parser.add_argument("--factor", type=float, default=2.0, help="the overload, times the capacity")
    parser.add_argument("--normal", type=float, default=1.0,
                        help="baseline and recovery rate, times the capacity (default 1: at the capacity)")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds at the capacity first")
    parser.add_argument("--overload", type=float, default=30.0, help="seconds at factor x capacity")
    parser.add_argument("--recovery", type=float, default=40.0, help="seconds at the capacity afterwards")
    parser.add_argument("--stable", type=int, default=5, help="consecutive normal 1-s windows that mean recovered")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request unanswered after this failed")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at the capacity before, unrecorded")
    parser.add_argument("--server-arg", action="append", default=[], help="extra 'shoprank serve' argument")
    parser.add_argument("--json", default=None, help="result name under bench/results (default overload-SHOP)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    capacity = args.capacity or capacity_from_serve_bench(args.shop, args.endpoint)
    if not capacity:
        parser.error(f"no capacity: run bench.serve on {args.shop} {args.endpoint} first, or give --capacity")
    schedule = Schedule(capacity, args.factor, args.baseline, args.overload, args.recovery, args.normal)
    normal = capacity * args.normal
    work = Path(tempfile.mkdtemp(prefix="shoprank-overload-"))
    try:
        Shop(args.shop, args.home).copy_to(work)  # the store by its backup, the rest as files
        key = KeyStore(work).create("admin", name="bench.overload")[0]
        paths = request_paths(work, args.shop, args.endpoint, 2000)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        print(f"starting the server on {url} (a copy of {args.home}/{args.shop}) ...", flush=True)
        process = start_server(work, port, args.server_arg, 600)
        load = os.getloadavg()
        try:
            if args.warmup:
                asyncio.run(fire(url, key, paths, Schedule(normal, 1, args.warmup, 0, 0), timeout=args.timeout,
                                 max_connections=args.connections))
            print(f"{args.endpoint}: {args.baseline:g} s at {normal:g} req/s, {args.overload:g} s at "
                  f"{capacity * args.factor:g}, {args.recovery:g} s at {normal:g} ...", flush=True)
            sampler = Sampler(process.pid, url, key)
            sampler.start()
            shots = asyncio.run(fire(url, key, paths, schedule, timeout=args.timeout,
                                     max_connections=args.connections))
            sampler.halt.set()
            sampler.join()
            alive = process.poll() is None
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except Exception:  # noqa: BLE001 - a server that will not stop is killed
                process.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = dict(zip(PHASES, (args.baseline, args.overload, args.recovery), strict=True))
    phases = {p: phase_figures(shots, p, seconds[p]) for p in PHASES}
    threshold = phases["baseline"]["p99_ms"]
    during = windows(shots, schedule.baseline, schedule.overload_end)
    after = windows(shots, schedule.overload_end, schedule.overload_end + args.recovery)
    recovered = recovery_seconds(after, threshold, args.stable) if threshold is not None else None
    memory = memory_figures(sampler.samples, schedule)
    base_in_flight, drained = drain_seconds(sampler.in_flight, schedule)
    peak_in_flight = max((n for t, n in sampler.in_flight if schedule.baseline <= t < schedule.overload_end),
                         default=None)
    rows = []
    for p in PHASES:
        f, m = phases[p], memory.get(p, {})
        rows.append([p, f"{f['rate']:g}", f"{f['answered_per_s']:g}", f["refused_503"],
                     f"{f['refused_with_retry_after']}/{f['refused_503']}", f["other_5xx"], f["no_answer"],
                     *(f"{f[k]:.1f}" if f[k] is not None else "-" for k in ("p50_ms", "p95_ms", "p99_ms")),
                     f"{m['rss_max_mb']:.0f}" if m else "-", f"{m['cpu_percent']:.0f}" if m else "-"])
    print(table(["phase", "req/s", "answered/s", "503", "with Retry-After", "other 5xx", "no answer", "p50 ms",
                 "p95 ms", "p99 ms", "RSS max MB", "CPU %"], rows))
    print("recovery windows (s after the overload: p95 ms / refused):",
          " ".join(f"{w['from_s']:g}:{w['p95_ms']}/{w['refused']}" for w in after[:15]))
    print(f"back to normal (p95 <= baseline p99 {threshold} ms, no refusal, {args.stable} windows in a row): "
          f"{'not within the run' if recovered is None else f'{recovered:g} s'} after the overload; "
          f"server alive: {alive}")
    print(f"requests in flight: at most {base_in_flight} in the baseline, {peak_in_flight} in the overload; back to "
          f"{base_in_flight} or fewer {drained} s after the overload")
    result = {"command": "python -m bench.overload " + " ".join(argv or []), "shop": args.shop,
              "endpoint": args.endpoint, "capacity": capacity, "factor": args.factor, "normal": args.normal,
              "seconds": seconds, "load_before": [round(x, 2) for x in load],
              "load_after": [round(x, 2) for x in os.getloadavg()], "phases": phases, "memory": memory,
              "normal_threshold_ms": threshold, "recovery_s": recovered, "stable_windows": args.stable,
              "server_alive": alive, "in_flight_baseline_max": base_in_flight,
              "in_flight_overload_max": peak_in_flight, "drained_s": drained, "in_flight": sampler.in_flight,
              "overload_windows": during, "recovery_windows": after}
    if not args.no_write:
        print(write_json(args.json or f"overload-{args.shop}", result))
    fine = alive and recovered is not None and recovered <= 30 and all(
        phases[p]["other_5xx"] == 0 and phases[p]["no_answer"] == 0 for p in PHASES)
    return 0 if fine else 1


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    import sys

    sys.exit(main(sys.argv[1:]))
