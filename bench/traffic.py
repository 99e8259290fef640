"""Answers from the first minute, and what logging every answer costs.

    python -m bench.traffic --part first-answer   # 50,000 Home Depot products: ingest, then the first search answer
    python -m bench.traffic --part overhead       # search p50 in-process: no logging / logging / a stalled store
    python -m bench.traffic --part first-build    # in-process: open the new shop, build + publish its baseline

first-answer: a server (``shoprank serve``, a real process, defaults) runs on an empty data folder; the first
50,000 products of ``homedepot/products.csv`` are ingested into a new shop with ``shoprank ingest products``;
from the moment that command exits, the shop is searched until it answers 200. With ``--wait-hybrid`` the
bench also waits for the background embedding (``/admin/status``) and reports when hybrid search answered.

first-build: the server's side of the first answer without HTTP or another process: an in-process app on an
empty folder, the products ingested, then the time to open the new shop and to build and publish its lexical
baseline (the registry's own calls, the background worker held off).

overhead: one in-process app (httpx ASGITransport) over the Home Depot catalogue served by the lexical baseline;
the same queries go round-robin through three modes of the impression log, so all three share the machine's
state: off (no impression recorded), on (the server's writer), and stalled (a store whose writes never return:
the queue fills, every further impression is dropped and counted). Reported: search p50 / p99 per mode and
the answers lost (non-200) in each.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import table, write_json


def data_root() -> Path:
    return Path(os.environ.get("SHOPRANK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def homedepot_products(n: int, out: Path) -> Path:
    """The first ``n`` Home Depot products as a CSV ``shoprank ingest products`` reads with two --map options."""
    source = data_root() / "homedepot" / "products.csv"
    with source.open(encoding="utf-8", errors="replace", newline="") as f, out.open("w", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i >= n:
                break
            writer.writerow(row)
    return out


def queries(n: int, seed: int = 0) -> list[str]:
    with (data_root() / "homedepot" / "judgments.csv").open(encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        field = next(k for k in reader.fieldnames or [] if "search" in k or k == "query")
        found = sorted({row[field] for row in reader if row[field].strip()})
    return random.Random(seed).sample(found, min(n, len(found)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def first_answer(args: argparse.Namespace) -> dict[str, Any]:
    shoprank = [sys.executable, "-m", "shoprank"]
    with tempfile.TemporaryDirectory(prefix="first-answer-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        products = homedepot_products(args.products, Path(tmp) / "products.csv")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*shoprank, "serve", "--home", str(home), "--port", str(port), "--open"],
                                  stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "server.log", "w"))
        try:
            while _get(f"{base}/health", 1)[0] != 200:
                if server.poll() is not None:
                    raise RuntimeError("the server exited: " + (Path(tmp) / "server.log").read_text()[-2000:])
                time.sleep(0.1)
            began = time.perf_counter()
            subprocess.run([*shoprank, "ingest", "products", str(products), "--shop", "fresh", "--home", str(home),
                            "--map", "id=product_uid", "--map", "title=product_title", "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
            ingested = time.perf_counter()
            attempts = 0
            while True:
                attempts += 1
                status, body = _get(f"{base}/shops/fresh/search?q=cordless%20drill&per_page=5")
                if status == 200:
                    break
                time.sleep(0.05)
            answered = time.perf_counter()
            out: dict[str, Any] = {
                "products": args.products, "ingest_seconds": round(ingested - began, 2),
                "first_answer_seconds": round(answered - ingested, 2), "attempts": attempts,
                "model_version": body["model_version"], "hits": [h["title"] for h in body["hits"]],
            }
            if args.wait_hybrid:
                deadline = time.perf_counter() + args.wait_hybrid
                progress = None
                while time.perf_counter() < deadline:
                    _, status_body = _get(f"{base}/admin/status")
                    progress = (status_body or {}).get("shops", {}).get("fresh", {}).get("baseline")
                    version = (status_body or {}).get("shops", {}).get("fresh", {}).get("models", {}).get(
                        "search", {}).get("version")
                    if progress and progress.get("stage") == "done" and version != out["model_version"]:
                        out["hybrid_seconds_after_ingest"] = round(time.perf_counter() - ingested, 1)
                        out["hybrid_version"] = version
                        break
                    time.sleep(1.0)
                out["embedding"] = progress
        finally:
            server.terminate()
            server.wait(30)
    rows = [["ingest 50k products (shoprank ingest)", out["ingest_seconds"]],
            ["first search answer after ingest", out["first_answer_seconds"]]]
    if "hybrid_seconds_after_ingest" in out:
        rows.append(["hybrid search swapped in, after ingest", out["hybrid_seconds_after_ingest"]])
    print(table(["step", "seconds"], rows))
    print(f"first answer: {out['model_version']}: {out['hits'][:3]}")
    return out


def first_build(args: argparse.Namespace) -> dict[str, Any]:
    from shoprank.data.ingest import ingest_file
    from shoprank.serving import ServingConfig, create_app
    from shoprank.shops import Shop

    with tempfile.TemporaryDirectory(prefix="first-build-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        products = homedepot_products(args.products, Path(tmp) / "products.csv")
        app = create_app(home, open_access=True, config=ServingConfig(watch_seconds=0, baseline_embeddings=False))
        registry = app.state.registry
        registry.load_all()
        registry.baseline.schedule = lambda *a, **k: None  # the request's own build, nothing in the background
        with Shop("fresh", home).store() as store:
            ingest_file(store, "products", products, mapping={"id": "product_uid", "title": "product_title"})
        began = time.perf_counter()
        state = registry.get("fresh")
        opened = time.perf_counter()
        slot = registry.fill_missing(state, "search")
        built = time.perf_counter()
        registry.close()
    out = {"products": args.products, "open_seconds": round(opened - began, 2),
           "build_publish_seconds": round(built - opened, 2), "total_seconds": round(built - began, 2),
           "state": slot.state, "version": slot.version, "load_average": os.getloadavg()[0]}
    print(table(["step", "seconds"], [["open the shop (serving catalogue)", out["open_seconds"]],
                                      ["build + publish the lexical baseline", out["build_publish_seconds"]],
                                      ["total", out["total_seconds"]]]))
    return out


class StalledStore:
    """Impression writes that never return (until the bench ends): a hung disk or a locked database."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def append_impressions(self, impressions: Any) -> Any:
        self.release.wait()
        raise OSError("stalled store released at the end of the bench")

    def get_impressions(self, ids: Any) -> dict[str, Any]:
        return {}

    def delete_impressions_before(self, t: float) -> int:
        return 0

    def close(self) -> None:
        pass


async def _overhead(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from shoprank.serving import ServingConfig, create_app
    from shoprank.serving.impressions import ImpressionLog
    from shoprank.serving.registry import limit_threads
    from shoprank.shops import Shop

    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        home = Path(tmp) / "home"
        products = homedepot_products(args.products, Path(tmp) / "products.csv")
        from shoprank.data.ingest import ingest_file

        with Shop("hd", home).store() as store:
            ingest_file(store, "products", products, mapping={"id": "product_uid", "title": "product_title"})
        app = create_app(home, open_access=True, config=ServingConfig(watch_seconds=0, baseline_embeddings=False))
        app.state.registry.load_all()
        limit_threads(1)
        metrics = app.state.metrics
        on = app.state.impressions
        release = threading.Event()
        stalled = ImpressionLog(lambda name: StalledStore(release), metrics.count,  # type: ignore[arg-type]
                                capacity=args.stalled_queue)
        modes = {"off": None, "on": on, "stalled": stalled}
        samples: dict[str, list[float]] = {m: [] for m in modes}
        failed = dict.fromkeys(modes, 0)
        qs = queries(args.queries)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            for q in qs[:20]:  # warm-up
                await c.get("/shops/hd/search", params={"q": q})
            names = list(modes)
            for rnd in range(args.rounds):
                for i, q in enumerate(qs):  # the mode that meets a query first rotates (a cold first call)
                    for j in range(len(names)):
                        mode = names[(i + rnd + j) % len(names)]
                        log = modes[mode]
                        app.state.impressions = log
                        t = time.perf_counter()
                        r = await c.get("/shops/hd/search", params={"q": q})
                        samples[mode].append(time.perf_counter() - t)
                        failed[mode] += r.status_code != 200
        on.flush()
        written, dropped = on.written, stalled.dropped
        from shoprank.data.impressions import Impression

        probe = ImpressionLog(lambda name: StalledStore(release), lambda *a: None, capacity=10**6)  # type: ignore
        imp = Impression("r" * 32, time.time(), "search", tuple(f"{100000 + i}" for i in range(10)),
                         tuple(range(10)), query="cordless drill", model_version="baseline-x")
        t = time.perf_counter()
        for _ in range(20_000):
            probe.record("hd", imp)
        record_us = (time.perf_counter() - t) / 20_000 * 1e6
        import logging

        logging.getLogger("shoprank.serving").setLevel(logging.ERROR)  # the stalled writes fail on release
        release.set()
        stalled.close()
        probe.close()
        on.close()
        app.state.registry.close()
    out: dict[str, Any] = {"products": args.products, "requests_per_mode": len(qs) * args.rounds, "modes": {}}
    rows = []
    for mode, values in samples.items():
        p50, p99 = statistics.median(values) * 1000, sorted(values)[int(0.99 * (len(values) - 1))] * 1000
        out["modes"][mode] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "failed": failed[mode]}
        rows.append([mode, round(p50, 3), round(p99, 3), failed[mode]])
    out["p50_overhead_ms"] = round(out["modes"]["on"]["p50_ms"] - out["modes"]["off"]["p50_ms"], 3)
    out["stalled_p50_overhead_ms"] = round(out["modes"]["stalled"]["p50_ms"] - out["modes"]["off"]["p50_ms"], 3)
    out["impressions_written_on"], out["impressions_dropped_stalled"] = written, dropped
    out["record_call_us"] = round(record_us, 2)
    print(table(["impression log", "search p50 ms", "p99 ms", "answers lost"], rows))
    print(f"logging adds {out['p50_overhead_ms']:+.3f} ms to p50 ({written} written); stalled store: "
          f"{out['stalled_p50_overhead_ms']:+.3f} ms, {dropped} impressions dropped and counted; "
          f"one record() call: {record_us:.1f} us")
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["first-answer", "first-build", "overhead", "all"], default="all")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300, help="overhead: distinct Home Depot queries")
    parser.add_argument("--rounds", type=int, default=2, help="overhead: passes over the queries")
    parser.add_argument("--stalled-queue", type=int, default=100,
                        help="overhead: queue bound of the stalled log (small, so it fills and drops)")
    parser.add_argument("--wait-hybrid", type=float, default=0.0, metavar="SECONDS",
                        help="first-answer: also wait (at most this long) for hybrid search to swap in")
    args = parser.parse_args(argv)
    if not (data_root() / "homedepot" / "products.csv").is_file():
        raise SystemExit(f"Home Depot data not found under {data_root()} (set SHOPRANK_DATA)")
    out: dict[str, Any] = {}
    if args.part in ("first-answer", "all"):
        out["first_answer"] = first_answer(args)
    if args.part == "first-build":
        out["first_build"] = first_build(args)
    if args.part in ("overhead", "all"):
        out["overhead"] = asyncio.run(_overhead(args))
    path = write_json(f"traffic-{args.part}", out)
    print(f"results: {path}")
    return out


if __name__ == "__main__":
    main()
