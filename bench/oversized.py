"""Scenario 7, oversized input, against a real ``shoprank serve``: what it answers, and the server's peak memory.

    python -m bench.oversized                              # every case, a tiny shop with the fake engines
    python -m bench.oversized --cases nested,query-1mb --concurrent 8

Each case is sent over a raw socket (so the body can be streamed, declared or chunked, and sending stops as
soon as the server answers). Before each case the server's peak RSS (``VmHWM``) is reset through
``/proc/PID/clear_refs``; after it, the peak is read back. Figures per case: status and error code (every
refusal must be 413/400/422 with the ``{"error": {"code", "message", "field"}}`` shape), bytes the client got
to send before the answer, seconds to the answer, the server's RSS before, its peak during the case, and the
peak above the RSS before.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

MB = 1 << 20
EVENT = ('{{"event_id":"e{i:08d}","user_id":"u{u:04d}","item_id":"kitchen-0-0","type":"view",'
         '"timestamp":1700000000}}')
EVENT_BYTES = len(EVENT.format(i=0, u=0)) + 1  # with its comma


@dataclass
class Request:
    """One request to send: the body is streamed from ``parts``; ``length`` None means chunked."""

    method: str
    path: str
    parts: Callable[[], Iterable[bytes]] = lambda: ()
    length: int | None = 0
    expect: tuple[int, ...] = (413,)


@dataclass
class Answer:
    status: int = 0
    code: str | None = None
    shaped: bool = False
    """The body is the project's error shape (or a 200 answer)."""
    sent: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class CaseResult:
    name: str
    description: str
    answers: list[Answer] = field(default_factory=list)
    rss_before_mb: float = 0.0
    peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    ok: bool = False

    @property
    def peak_above_mb(self) -> float:
        return round(self.peak_mb - self.rss_before_mb, 1)


# ------------------------------------------------------------------------------------------- bodies
def events_body(count: int) -> tuple[Callable[[], Iterator[bytes]], int]:
    """``{"events": [...]}`` with ``count`` fixed-width events, generated lazily in ~1 MB pieces; its length."""
    head, tail = b'{"events":[', b"]}"

    def parts() -> Iterator[bytes]:
        yield head
        step = max(1, MB // EVENT_BYTES)
        for start in range(0, count, step):
            stop = min(count, start + step)
            yield ",".join(EVENT.format(i=i, u=i % 1000) for i in range(start, stop)).encode() + (
                b"," if stop < count else b"")
        yield tail

    return parts, len(head) + len(tail) + count * EVENT_BYTES - 1


def filler(total: int, piece: bytes = b" " * MB) -> Callable[[], Iterator[bytes]]:
    def parts() -> Iterator[bytes]:
        left = total
        while left > 0:
            yield piece[: min(left, len(piece))]
            left -= len(piece)

    return parts


def fixed(*chunks: bytes) -> tuple[Callable[[], Iterator[bytes]], int]:
    return (lambda: iter(chunks)), sum(len(c) for c in chunks)


def product_with_description(chars: int) -> tuple[Callable[[], Iterator[bytes]], int]:
    head = b'{"products":[{"id":"big-1","title":"Big","category":"Test","description":"'
    tail = b'"}]}'
    size = len(head) + chars + len(tail)

    def parts() -> Iterator[bytes]:
        yield head
        yield from filler(chars, b"x" * MB)()
        yield tail

    return parts, size


def cases(shop: str, body_limit: int) -> dict[str, tuple[str, Request]]:
    """Name -> (what it is, the request)."""
    events = f"/shops/{shop}/events"
    products = f"/shops/{shop}/products"
    million, million_bytes = events_body(1_000_000)
    under = (body_limit - 64) // EVENT_BYTES
    at_limit, at_limit_bytes = events_body(under)
    batch, batch_bytes = events_body(10_001)
    desc10, desc10_bytes = product_with_description(10 * MB)
    desc9, desc9_bytes = product_with_description(9 * MB)
    depth = 100_000
    nested, nested_bytes = fixed(b'{"events":', b"[" * depth, b"]" * depth, b"}")
    long_id, long_id_bytes = fixed(b'{"events":[{"event_id":"', b"i" * MB,
                                   b'","user_id":"u1","item_id":"kitchen-0-0","type":"view","timestamp":1700000000}]}')
    return {
        "declared-100mb": ("POST events, Content-Length 100 MB (blank body streamed)",
                           Request("POST", events, filler(100 * MB), 100 * MB)),
        "events-1m-declared": (f"POST 1,000,000 events ({million_bytes / MB:.0f} MB), Content-Length",
                               Request("POST", events, million, million_bytes)),
        "events-1m-chunked": (f"POST 1,000,000 events ({million_bytes / MB:.0f} MB), chunked (no length)",
                              Request("POST", events, million, None)),
        "batch-10001": (f"POST 10,001 events ({batch_bytes / MB:.1f} MB)", Request("POST", events, batch,
                                                                                     batch_bytes)),
        "batch-at-body-limit": (f"POST {under:,} events ({at_limit_bytes / MB:.1f} MB, just under the body limit)",
                                Request("POST", events, at_limit, at_limit_bytes)),
        "description-10mb": (f"PUT one product, 10 MB description ({desc10_bytes / MB:.1f} MB body)",
                             Request("PUT", products, desc10, desc10_bytes)),
        "description-9mb": (f"PUT one product, 9 MB description ({desc9_bytes / MB:.1f} MB body)",
                            Request("PUT", products, desc9, desc9_bytes, (422,))),
        "id-1mb": ("POST one event whose event_id is 1 MB", Request("POST", events, long_id, long_id_bytes,
                                                                    (422,))),
        "nested": (f"POST JSON nested {depth:,} deep", Request("POST", events, nested, nested_bytes, (400,))),
        "query-10k": ("GET search, 10,000-character query", Request(
            "GET", f"/shops/{shop}/search?q={'drill%20' * 2000}", expect=(200,))),
        "query-1mb": ("GET search, 1 MB query string", Request(
            "GET", f"/shops/{shop}/search?q={'a' * MB}", expect=(200, 400, 413, 414, 431))),
    }


# ------------------------------------------------------------------------------------------- client
def send(port: int, key: str, request: Request, *, timeout: float = 60.0) -> Answer:
    """Send ``request``, stop streaming its body once the server answers; read the answer."""
    answer = Answer()
    started = time.perf_counter()
    head = [f"{request.method} {request.path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}",
            "Content-Type: application/json", "Connection: close"]
    if request.length is None:
        head.append("Transfer-Encoding: chunked")
    elif request.method != "GET":
        head.append(f"Content-Length: {request.length}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            finished = _stream(sock, request, answer)
            if finished and request.length is None:
                sock.sendall(b"0\r\n\r\n")
            _read_answer(sock, answer)
    except OSError as exc:
        answer.error = repr(exc)
    answer.seconds = round(time.perf_counter() - started, 3)
    return answer


def _stream(sock: socket.socket, request: Request, answer: Answer) -> bool:
    """Send the body piece by piece; False if the server answered (or closed) first."""
    for piece in request.parts():
        for start in range(0, len(piece), 256 * 1024):
            if select.select([sock], [], [], 0)[0]:
                return False  # an answer (or a close) is waiting: stop sending
            chunk = piece[start:start + 256 * 1024]
            data = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if request.length is None else chunk
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                return False
            answer.sent += len(chunk)
    return True


def _read_answer(sock: socket.socket, answer: Answer) -> None:
    reader = sock.makefile("rb")
    status_line = reader.readline()
    if not status_line:
        answer.error = "closed without an answer"
        return
    answer.status = int(status_line.split()[1])
    length = None
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = reader.read(length) if length is not None else reader.read()
    try:
        data = json.loads(body)
    except ValueError:
        return
    if answer.status == 200:
        answer.shaped = isinstance(data, dict)
    elif isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        answer.code = error.get("code")
        answer.shaped = {"code", "message", "field"} <= set(error)


# ------------------------------------------------------------------------------------------- memory
def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM); False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = round(int(value.split()[0]) / 1024, 1)
    return out


class PeakSampler(threading.Thread):
    """Samples VmRSS every 10 ms: the peak where VmHWM cannot be reset."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.01):
            try:
                self.peak = max(self.peak, memory_mb(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return


def run_case(name: str, description: str, request: Request, port: int, key: str, pid: int, concurrent: int,
             can_reset: bool) -> CaseResult:
    time.sleep(0.5)  # let the previous case's garbage go
    result = CaseResult(name, description if concurrent == 1 else f"{concurrent} at once: {description}")
    result.rss_before_mb = memory_mb(pid)["VmRSS"]
    if can_reset:
        reset_peak(pid)
    sampler = PeakSampler(pid)
    sampler.start()
    answers: list[Answer] = [Answer() for _ in range(concurrent)]

    def one(i: int) -> None:
        answers[i] = send(port, key, request)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.2)
    sampler.halt.set()
    sampler.join()
    after = memory_mb(pid)
    result.peak_mb = max(after["VmHWM"] if can_reset else 0.0, sampler.peak, after["VmRSS"])
    result.rss_after_mb = after["VmRSS"]
    result.answers = answers
    result.ok = all(a.status in request.expect and a.shaped for a in answers)
    return result


# ------------------------------------------------------------------------------------------- main
@dataclass
class Measured:
    idle_rss_mb: float
    peak_method: str
    server_alive: bool
    results: list[CaseResult]


def measure(names: Sequence[str] | None = None, concurrent: int = 0) -> Measured:
    """Start a server on a tiny shop (fake engines) in a temporary folder, send the cases, stop it.

    ``concurrent`` > 0 also sends the two largest admitted bodies that many times at once."""
    from bench.processes import Server
    from shoprank.keys import KeyStore
    from shoprank.serving.config import ServingConfig
    from tests.support.fakes import tiny_shop

    all_cases = cases("tiny", ServingConfig().max_body_bytes)
    names = list(names or all_cases)
    unknown = set(names) - set(all_cases)
    if unknown:
        raise ValueError(f"unknown cases {sorted(unknown)}; valid: {', '.join(all_cases)}")
    runs = [(n, 1) for n in names]
    if concurrent > 0:
        runs += [("batch-at-body-limit", concurrent), ("description-9mb", concurrent)]
    work = Path(tempfile.mkdtemp(prefix="shoprank-oversized-"))
    try:
        tiny_shop(work, "tiny")
        key = KeyStore(work).create("admin", name="bench.oversized")[0]
        server = Server(work, watch=0)
        server.start()
        assert server.process is not None
        pid = server.process.pid
        try:
            can_reset = reset_peak(pid)
            idle = memory_mb(pid)["VmRSS"]
            results = []
            for name, times in runs:
                description, request = all_cases[name]
                result = run_case(name, description, request, server.port, key, pid, times, can_reset)
                results.append(result)
                first = result.answers[0]
                print(f"{name} x{times}: {first.status} {first.code or ''} peak {result.peak_mb} MB "
                      f"({'ok' if result.ok else 'UNEXPECTED'})", flush=True)
            alive = server.process.poll() is None
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    method = "VmHWM reset per case" if can_reset else "VmRSS sampled every 10 ms"
    return Measured(idle, method, alive, results)


def main(argv: Sequence[str] | None = None) -> int:
    from bench.common import table, write_json
    from shoprank.serving.config import ServingConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--concurrent", type=int, default=ServingConfig().max_in_flight,
                        help="also send the largest admitted bodies this many times at once (default: the "
                             "admission limit, 32); 0 skips it")
    parser.add_argument("--json", default="oversized", help="result name under bench/results/")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    try:
        measured = measure(args.cases.split(",") if args.cases else None, args.concurrent)
    except ValueError as exc:
        parser.error(str(exc))
    results = measured.results
    rows = []
    for r in results:
        statuses = sorted({f"{a.status} {a.code or ''}".strip() for a in r.answers})
        sent = max(a.sent for a in r.answers)
        rows.append([r.description, ", ".join(statuses), f"{sent / MB:.1f}",
                     f"{max(a.seconds for a in r.answers):.2f}", f"{r.rss_before_mb:.0f}", f"{r.peak_mb:.0f}",
                     f"{r.peak_above_mb:.0f}", "yes" if r.ok else "NO"])
    print(table(["case", "answer", "MB sent", "s", "RSS before MB", "peak MB", "peak above MB", "as promised"],
                rows))
    print(f"server RSS idle {measured.idle_rss_mb} MB, highest peak {max(r.peak_mb for r in results)} MB; "
          f"server alive at the end: {measured.server_alive}; peak by {measured.peak_method}")
    if not args.no_write:
        path = write_json(args.json, {
            "command": "python -m bench.oversized " + " ".join(argv or []), "idle_rss_mb": measured.idle_rss_mb,
            "peak_method": measured.peak_method, "server_alive": measured.server_alive,
            "load": [round(x, 2) for x in os.getloadavg()],
            "cases": [{**asdict(r), "peak_above_mb": r.peak_above_mb} for r in results]})
        print(f"written {path}")
    return 0 if measured.server_alive and all(r.ok for r in results) else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
