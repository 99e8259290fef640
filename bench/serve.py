"""Serving latency under an open-model load: a fixed arrival rate against 127.0.0.1, bounded in time.

    python -m bench.serve --home shoprank-data --shop homedepot --endpoint search --rates 50,100,200
    python -m bench.serve --home shoprank-data --shop amazon-games --endpoint recommend --rates 50,100,200
    python -m bench.serve --home shoprank-data --shop homedepot --breakdown   # where a search's time goes

Requests are sent at fixed times (t0 + i / rate) whatever the server does, so queueing is measured, not
hidden (no coordinated omission): a request's latency runs from its scheduled time to the last byte of its
answer. Each step runs ``--warmup`` seconds unrecorded, then ``--duration`` seconds recorded, then waits at
most ``--drain`` seconds; what is still open then counts as an error. The server is started here
(``python -m shoprank serve``) with a temporary admin key unless ``--url`` and ``--key`` are given.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import table, write_json

P99_TARGET_MS = 100.0


@dataclass
class Sample:
    latency: float
    status: int
    timing: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- HTTP
class Connection:
    """One keep-alive HTTP/1.1 connection: minimal and cheap, so the client leaves the CPU to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, host: str, path: str, key: str) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


class ConnectionPool:
    """Kept-alive connections to one server, for GET requests with a key and a timeout each."""

    def __init__(self, url: str, key: str, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.key, self.timeout = key, timeout
        self.idle: list[Connection] = []

    async def _ask(self, conn: Connection, path: str) -> tuple[int, dict[str, str], bytes]:
        return await asyncio.wait_for(conn.get(f"{self.host}:{self.port}", path, self.key), self.timeout)

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of ``GET path``; raises what the connection or the timeout raised."""
        conn = self.idle.pop() if self.idle else None
        try:
            answer = None
            if conn is not None:
                try:  # a kept-alive connection the server has since closed: retry on a fresh one (GET)
                    answer = await self._ask(conn, path)
                except (ConnectionError, asyncio.IncompleteReadError):
                    conn.close()
                    conn = None
            if conn is None:
                conn = Connection(*await asyncio.open_connection(self.host, self.port))
                answer = await self._ask(conn, path)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if answer[1].get("connection", "").lower() == "close":
            conn.close()
        else:
            self.idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def parse_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if rest:
            out[name] = float(rest) / 1000
    return out


async def run_step(url: str, key: str, paths: Sequence[str], rate: float, seconds: float, *, drain: float,
                   timeout: float, max_connections: int, first: int = 0) -> list[Sample]:
    """Send ``rate`` requests a second for ``seconds``, cycling through ``paths`` from position ``first``;
    returns one sample per request."""
    pool = ConnectionPool(url, key, timeout)
    slots = asyncio.Semaphore(max_connections)
    samples: list[Sample] = []

    async def one(path: str, scheduled: float) -> None:
        async with slots:
            try:
                status, headers, _ = await pool.get(path)
                samples.append(Sample(time.perf_counter() - scheduled, status,
                                      parse_timing(headers.get("server-timing", ""))))
            except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                samples.append(Sample(time.perf_counter() - scheduled, 0))

    tasks = []
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(paths[(first + i) % len(paths)], scheduled)))
    done, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    samples += [Sample(drain, 0) for _ in pending]
    pool.close()
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarise(rate: float, samples: list[Sample], seconds: float, cpu: float | None, rss: float | None
              ) -> dict[str, Any]:
    ok = [s for s in samples if 200 <= s.status < 300]
    latencies = [s.latency * 1000 for s in ok]  # of answered requests; refusals count in error_rate
    parts: dict[str, float] = {}
    for s in ok:
        for name, value in s.timing.items():
            parts[name] = parts.get(name, 0.0) + value
    server = {name: round(1000 * value / max(len(ok), 1), 3) for name, value in parts.items()}
    return {
        "rate": rate,
        "requests": len(samples),
        "throughput": round(len(ok) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "error_rate": round(1 - len(ok) / max(len(samples), 1), 4),
        "overload_503": sum(s.status == 503 for s in samples),
        "errors_by_status": {str(code): n for code, n in Counter(s.status for s in samples if not 200 <= s.status < 300
                                                                   ).items()},
        "server_mean_ms": server,
        "server_cpu_percent": cpu,
        "server_rss_mb": rss,
    }


# ------------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_launch(home: Path, port: int, extra: Sequence[str]) -> tuple[list[str], Path, dict[str, str]]:
    """The command, working folder and environment of ``shoprank serve``: it runs the shoprank package this
    process imported (``bench.with_code``'s "before" one included), not the checkout ``python -m`` would find
    first in the working folder."""
    import importlib.util

    spec = importlib.util.find_spec("shoprank")
    root = Path(spec.origin).resolve().parents[1] if spec is not None and spec.origin else Path.cwd()
    paths = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    command = [sys.executable, "-m", "shoprank", "serve", "--home", str(Path(home).resolve()), "--port", str(port),
               "--watch", "0", *extra]
    return command, root, {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def start_server(home: Path, port: int, extra: Sequence[str], wait: float) -> subprocess.Popen[bytes]:
    log = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the server
    command, root, env = server_launch(home, port, extra)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    import urllib.request

    deadline = time.monotonic() + wait
    ready = 0  # consecutive ready answers, each on a new connection: with --workers N, every worker ready
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                ready = ready + 1 if answer.status == 200 else 0
        except OSError:
            ready = 0
        if ready >= 10:
            return process
        time.sleep(0.05 if ready else 0.25)
    process.kill()
    raise SystemExit(f"the server was not ready within {wait:.0f} s")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server started with ``--workers N`` answers from child processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds used by the server: its process and every worker process under it."""
    total, found = 0.0, False
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
        except (OSError, IndexError, ValueError):
            continue
    return total if found else None


def rss_mb(pid: int) -> float | None:
    """Memory of the server in MB: its resident set, or with worker processes the sum of their proportional
    set sizes (PSS: a page shared by two processes counts half in each, so shared pages count once)."""
    tree = process_tree(pid)
    field, source = ("VmRSS:", "status") if len(tree) == 1 else ("Pss:", "smaps_rollup")
    total, found = 0, False
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/{source}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
                    found = True
                    break
        except OSError:
            continue
    return round(total / 1024, 1) if found else None


# ------------------------------------------------------------------------------------ what to ask
def request_paths(home: Path, shop: str, endpoint: str, n: int, seed: int = 0) -> list[str]:
    """Paths to cycle through: queries from the shop's judgments/events, users and items from its events."""
    from itertools import islice

    from shoprank.shops import Shop

    rng = random.Random(seed)
    with Shop(shop, home).store(create=False) as store:  # any store the shop uses (SQLite or PostgreSQL)
        if endpoint == "search":
            values = [j.query for j in store.judgments()]
            values += [e.query for e in store.iter_events() if e.query]
            if not values:
                values = [" ".join(p.title.split()[:2]) for p in islice(store.iter_products(), 20000)]
            fmt = "/shops/{shop}/search?q={v}&per_page=10"
        else:  # the most recent events' users (recommend) or items (similar)
            recent = list(store.iter_events())[-50000:][::-1]
            values = [e.user_id for e in recent] if endpoint == "recommend" else [e.item_id for e in recent]
            fmt = "/shops/{shop}/users/{v}/recommendations?k=10" if endpoint == "recommend" else \
                "/shops/{shop}/products/{v}/similar?k=10"
    values = [v for v in dict.fromkeys(values) if v]
    if not values:
        raise SystemExit(f"shop {shop!r} has nothing to ask {endpoint} about")
    rng.shuffle(values)
    return [fmt.format(shop=shop, v=urllib.parse.quote(str(v), safe="")) for v in values[:n]]


def held_rate(steps: Sequence[dict[str, Any]]) -> float | None:
    """The highest rate whose p99 stayed under the target with under 1% errors."""
    good = [s["rate"] for s in steps if s["p99_ms"] < P99_TARGET_MS and s["error_rate"] < 0.01]
    return max(good) if good else None


async def load_test(args: argparse.Namespace, url: str, key: str, pid: int | None) -> list[dict[str, Any]]:
    paths = request_paths(Path(args.home), args.shop, args.endpoint, args.requests_pool)
    rates = [float(r) for r in args.rates.split(",")]
    steps: list[dict[str, Any]] = []
    sent = 0  # each step goes on where the last stopped: a repeat is a repeat in the pool, not a re-run
    if args.warmup:
        await run_step(url, key, paths, rates[0], args.warmup, drain=args.drain, timeout=args.timeout,
                       max_connections=args.connections)
        sent += int(rates[0] * args.warmup)
    i = 0
    while i < len(rates):
        rate = rates[i]
        before = cpu_seconds(pid) if pid else None
        began = time.perf_counter()
        samples = await run_step(url, key, paths, rate, args.duration, drain=args.drain, timeout=args.timeout,
                                 max_connections=args.connections, first=sent)
        sent += int(rate * args.duration)
        took = time.perf_counter() - began
        after = cpu_seconds(pid) if pid else None
        cpu = round(100 * (after - before) / took, 1) if before is not None and after is not None else None
        step = summarise(rate, samples, args.duration, cpu, rss_mb(pid) if pid else None)
        steps.append(step)
        print(f"  {rate:6.0f} req/s: p50 {step['p50_ms']:.1f} ms  p95 {step['p95_ms']:.1f} ms  "
              f"p99 {step['p99_ms']:.1f} ms  errors {step['error_rate']:.2%}  server {step['server_mean_ms']}",
              flush=True)
        last = i == len(rates) - 1
        if last and args.probe and step["p99_ms"] < P99_TARGET_MS and step["error_rate"] < 0.01 \
                and rate + args.probe <= args.max_rate:
            rates.append(rate + args.probe)  # keep climbing to find the knee
        i += 1
        await asyncio.sleep(1.0)  # let queues empty between steps
    return steps


# ---------------------------------------------------------------------------------- the breakdown
def breakdown(args: argparse.Namespace) -> dict[str, Any]:
    """Time a search's stages in-process: query encoding, candidates (BM25 + ANN), ranking, then ours."""
    from shoprank.serving.catalog import Catalog
    from shoprank.serving.common import json_response
    from shoprank.serving.config import ServingConfig
    from shoprank.shops import Shop

    if args.facet_candidates is None:  # what the server counts facets over
        args.facet_candidates = ServingConfig().facet_candidates
    shop = Shop(args.shop, args.home)
    from shoprank.search import SearchEngine

    engine = SearchEngine.load(shop, onnx_queries=True, query_cache=0)  # as served, but every query embedded
    store = shop.store(create=False)
    catalog = Catalog(store)
    queries = [urllib.parse.unquote(p.split("q=")[1].split("&")[0]) for p in
               request_paths(Path(args.home), args.shop, "search", 200)]
    stack = engine.stack
    timings: dict[str, list[float]] = {}

    def clock(name: str, began: float) -> float:
        now = time.perf_counter()
        timings.setdefault(name, []).append(now - began)
        return now

    from shoprank.serving.registry import limit_threads

    limit_threads(1)  # as in the server
    for q in queries[:10]:
        engine.search(q, k=10)  # warm-up
    for q in queries[: args.breakdown_queries]:
        t = time.perf_counter()
        tokens = stack.tokens(q)
        t = clock("1 tokenise", t)
        stack.encode_queries([q])
        t = clock("2a encode query (fine-tuned MiniLM, PyTorch)", t)
        qvec = stack.embed_query(q)
        t = clock(f"2b encode query as served ({engine.query_backend.split(' (')[0]})", t)
        cand = stack.candidates(tokens, qvec, lexical_k=stack.config.lexical_k, dense_k=stack.config.dense_k)
        t = clock("3 candidates (BM25 + ANN)", t)
        stack.rank(q, tokens, cand, False)
        t = clock("4 rank (features + LambdaMART)", t)
        items, _ = engine.search(q, k=10)
        t = clock("5 engine.search k=10 (all of it)", t)
        wide, _ = engine.search(q, k=args.facet_candidates, explain=10)
        t = clock(f"6 engine.search k={args.facet_candidates}, 10 explained (the API's call: page + facets)", t)
        hits = catalog.hydrate(items)
        catalog.facets([i.id for i in wide])
        t = clock("7 hydrate + facets", t)
        json_response({"hits": hits})
        clock("8 JSON encoding", t)
    rows = [[name, round(1000 * sorted(v)[len(v) // 2], 3), round(1000 * percentile(v, 99), 3)]
            for name, v in sorted(timings.items())]
    print(table(["stage", "median ms", "p99 ms"], rows))
    print(f"query tower as served: {engine.query_backend}")
    return {"stages": {r[0]: {"median_ms": r[1], "p99_ms": r[2]} for r in rows},
            "queries": min(len(queries), args.breakdown_queries), "query_tower": engine.query_backend}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("SHOPRANK_HOME", "shoprank-data"))
    parser.add_argument("--shop", required=True)
    parser.add_argument("--endpoint", choices=["search", "recommend", "similar"], default="search")
    parser.add_argument("--rates", default="50,100,200", help="requests per second, one step each")
    parser.add_argument("--probe", type=float, default=0,
                        help="after the last rate, keep adding this many req/s while p99 < 100 ms")
    parser.add_argument("--max-rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=20, help="seconds recorded per step")
    parser.add_argument("--warmup", type=float, default=5, help="seconds sent before the first step, unrecorded")
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for stragglers after a step")
    parser.add_argument("--timeout", type=float, default=5, help="a request slower than this is an error")
    parser.add_argument("--connections", type=int, default=256, help="most client connections open at once")
    parser.add_argument("--requests-pool", type=int, default=20000,
                        help="distinct requests cycled through (search: Home Depot has 9,470 distinct queries, so "
                             "steps up to ~9,000 requests ask none twice and the query cache never helps)")
    parser.add_argument("--url", default=None, help="an already running server (else one is started here)")
    parser.add_argument("--key", default=None, help="with --url: a key that may read the shop")
    parser.add_argument("--server-arg", action="append", default=[], help="extra 'shoprank serve' argument")
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--breakdown", action="store_true", help="time a search's stages in-process instead")
    parser.add_argument("--breakdown-queries", type=int, default=50)
    parser.add_argument("--facet-candidates", type=int, default=None,
                        help="--breakdown: products the facets count over (default: the server's, "
                             "ServingConfig.facet_candidates)")
    parser.add_argument("--out", default=None, help="result name under bench/results (default from the options)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.breakdown:
        result = breakdown(args)
        if not args.no_write:
            print(write_json(args.out or f"serve-breakdown-{args.shop}", {"shop": args.shop, **result}))
        return result
    process = None
    key = args.key
    revoke = None
    url = args.url
    if url is None:
        from shoprank.keys import KeyStore

        keys = KeyStore(args.home)
        key, record = keys.create("admin", name="bench.serve (temporary)")
        revoke = (keys, record.id)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        print(f"starting the server on {url} ...", flush=True)
        process = start_server(Path(args.home), port, args.server_arg, args.ready_timeout)
    elif key is None:
        raise SystemExit("--url needs --key")
    try:
        print(f"{args.endpoint} on shop {args.shop}: steps of {args.duration:g} s at {args.rates} req/s", flush=True)
        steps = asyncio.run(load_test(args, url, key, process.pid if process else None))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if revoke is not None:
            revoke[0].revoke(revoke[1])
    rows = [[f"{s['rate']:g}", f"{s['throughput']:g}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}",
             f"{s['p99_ms']:.1f}", f"{s['error_rate']:.2%}", f"{s['server_cpu_percent'] or '-'}",
             f"{s['server_rss_mb'] or '-'}"] for s in steps]
    print(table(["req/s", "ok/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server CPU %", "RSS MB"], rows))
    held = held_rate(steps)
    print(f"highest rate held with p99 < {P99_TARGET_MS:g} ms: {held if held is not None else 'none'} req/s")
    result = {"shop": args.shop, "endpoint": args.endpoint, "duration_s": args.duration, "steps": steps,
              "held_rate": held}
    if not args.no_write:
        print(write_json(args.out or f"serve-{args.shop}-{args.endpoint}", result))
    return result


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()  # a lighter client leaves more of the 2 cores to the server
    except ImportError:
        pass
    main()
