"""Kill -9 at random points, restart, and check every acknowledged write against the client's own log.

    python -m bench.reliability                      # 4 scenarios x 20 kill points, seed 0
    python -m bench.reliability --kills 5 --scenarios ingest,serve --trainer fake

Scenarios (docs/reliability.md, 1-3), each against real processes killed with SIGKILL:

- ``ingest``: ``shoprank ingest`` of many small batch files (events and products), one process per file; a
  batch is acknowledged when its process exits 0. After a kill the store is opened and checked, then the client
  sends the killed batch again.
- ``serve``: a ``shoprank serve`` process (fake engines) takes ``POST /events`` and ``PUT /products`` from a
  client thread; a write is acknowledged by its HTTP 200. The client retries unanswered writes unchanged
  (same ``event_id`` and product ids) once the server is back.
- ``publish``: a process publishes model bundles in a loop while a server serves them; killed mid-way.
- ``train``: ``shoprank train recommend`` (``--trainer real``) or a stand-in that writes checkpoints, then
  publishes (``--trainer fake``), killed mid-way while a server serves recommendations.

Figures per scenario: acknowledged writes lost and duplicated (both must be 0), half-stored batches or
half-written bundles made visible (0), failed reads while the server was up (0), staging folders of killed
writers still there once the server has restarted (0), restart time (until the store opens and passes its
integrity check, or until ``/health`` answers ready) median and max.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.processes import PUBLISHER, Reader, Server, has_open, kill9, python

SCENARIOS = ("ingest", "serve", "publish", "train")


@dataclass
class Outcome:
    """What one scenario measured."""

    scenario: str
    kills: int = 0
    acknowledged: int = 0
    """Acknowledged writes (records, or published bundles)."""
    lost: int = 0
    duplicates: int = 0
    partial: int = 0
    """Batches found half-stored, or bundles that are visible but do not verify."""
    failed_reads: int = 0
    """Reads that failed, or served something other than the latest good bundle, while a server was up."""
    restarts: list[float] = field(default_factory=list)
    leftovers: int = 0
    """Staging folders of killed writers still present once the server has restarted (bundle scenarios)."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.partial or self.failed_reads or self.leftovers)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["restart_median_s"] = statistics.median(self.restarts) if self.restarts else None
        out["restart_max_s"] = max(self.restarts) if self.restarts else None
        out["ok"] = self.ok
        return out


# ------------------------------------------------------------------------------------------ store checks
def read_store(db: Path) -> tuple[set[str], set[str], int]:
    """Event ids, product ids, and duplicated events (same user, item, time and type stored twice)."""
    from collections import Counter

    from shoprank.store import open_store

    store = open_store(db)  # through the Store interface, as the server reads it
    try:
        stored = list(store.iter_events())
        products = {p.id for p in store.iter_products()}
    finally:
        store.close()
    same = Counter((e.user_id, e.item_id, e.timestamp, e.type) for e in stored)
    return {e.event_id for e in stored}, products, sum(n - 1 for n in same.values())


def open_and_check(db: Path) -> float:
    """The restart of an embedded store: open it (WAL recovery) and run the integrity check; seconds taken."""
    from shoprank.store import open_store

    started = time.perf_counter()
    store = open_store(db)
    try:
        problems = store.check_integrity()
    finally:
        store.close()
    if problems:
        raise AssertionError(f"integrity check failed after a kill: {problems}")
    return time.perf_counter() - started


@dataclass
class Batch:
    """One write the client sends (a file, or an HTTP request): all of its ids or none must be stored."""

    kind: str  # events | products
    ids: list[str]
    acked: bool = False
    attempted: bool = False


def check_batches(batches: list[Batch], db: Path, outcome: Outcome, lost: set[str]) -> None:
    """Compare the store with the client's log: acknowledged batches whole, the others whole or absent."""
    events, products, dups = read_store(db)
    outcome.duplicates = max(outcome.duplicates, dups)
    for batch in batches:
        stored = events if batch.kind == "events" else products
        present = sum(1 for i in batch.ids if i in stored)
        if batch.acked:
            lost.update(f"{batch.kind}:{i}" for i in batch.ids if i not in stored)
        if present not in (0, len(batch.ids)):
            outcome.partial += 1
    outcome.lost = len(lost)


# ------------------------------------------------------------------------------------------ (a) ingest
def _ingest_file(folder: Path, b: int, size: int) -> tuple[Path, Batch]:
    base = 1_700_000_000.0
    if b % 3 == 0:  # batch 0 holds the products every event batch refers to
        rows = [{"id": f"p{b}-{i}", "title": f"Batch {b} item {i}", "category": "Tools > Test", "price": 1 + i % 50}
                for i in range(size)]
        kind = "products"
    else:
        rows = [{"event_id": f"e{b}-{i}", "user_id": f"u{i % 97}", "item_id": f"p0-{(b + i) % 53}", "type": "view",
                 "timestamp": base + b * size + i} for i in range(size)]
        kind = "events"
    path = folder / f"{kind}-{b:04d}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, Batch(kind, [r.get("event_id") or r["id"] for r in rows])


def run_ingest(work: Path, kills: int, seed: int, *, batch_size: int = 2000) -> Outcome:
    """Scenario (a): ``shoprank ingest`` processes, one per batch file, killed at random points."""
    started = time.perf_counter()
    rng = random.Random(seed)
    outcome = Outcome("ingest")
    home = work / "ingest-home"
    files = work / "ingest-files"
    files.mkdir(parents=True)
    db = home / "shop" / "store.sqlite"
    batches: list[Batch] = []
    lost: set[str] = set()
    killed_whole = store_open = 0

    def ingest(path: Path, kind: str) -> subprocess.Popen[str]:
        return python("-m", "shoprank", "ingest", kind, str(path), "--shop", "shop", "--home", str(home), "--quiet",
                      stdout=subprocess.PIPE, errors=work / "writers.log")

    def finish(process: subprocess.Popen[str], batch: Batch) -> None:
        out, _ = process.communicate()
        if process.returncode != 0 or "stored" not in out:
            raise RuntimeError(f"ingest failed ({process.returncode}): {out}")
        batch.acked = True

    # the first batches run whole: they create the shop and time a process, to place the kills in its life
    lives = []
    for b in range(3):
        path, batch = _ingest_file(files, b, batch_size)
        batches.append(batch)
        t0 = time.perf_counter()
        finish(ingest(path, batch.kind), batch)
        lives.append(time.perf_counter() - t0)
    life = statistics.median(lives)
    b = 3
    path, batch = _ingest_file(files, b, batch_size)
    batches.append(batch)
    while outcome.kills < kills:
        process = ingest(path, batch.kind)
        time.sleep(rng.uniform(0.3, 1.3) * life)
        if process.poll() is None:
            store_open += has_open(process.pid, "store.sqlite")
            kill9(process)
            outcome.kills += 1
            outcome.restarts.append(open_and_check(db))
            check_batches(batches, db, outcome, lost)
            events, products, _ = read_store(db)
            killed_whole += batch.ids[0] in (events if batch.kind == "events" else products)
            continue  # the client sends the same file again
        finish(process, batch)
        b += 1
        path, batch = _ingest_file(files, b, batch_size)
        batches.append(batch)
    finish(ingest(path, batch.kind), batch)
    open_and_check(db)
    check_batches(batches, db, outcome, lost)
    events, products, _ = read_store(db)
    expected_events = sum(len(x.ids) for x in batches if x.kind == "events")
    if len(events) != expected_events:
        outcome.notes.append(f"{len(events)} events stored, {expected_events} sent")
    outcome.acknowledged = sum(len(x.ids) for x in batches if x.acked)
    outcome.notes.append(f"{len(batches)} batch files of {batch_size} rows; an ingest process lives {life:.2f} s; "
                         "kills drawn in 30-130 % of that (a process that ended first is no kill point); "
                         f"{store_open} kills hit a process with the store open; "
                         f"{killed_whole} killed batches were found whole (committed, not yet acknowledged), "
                         "the others absent")
    outcome.seconds = time.perf_counter() - started
    return outcome


# ------------------------------------------------------------------------------------------ (b) serve
class WriteClient(threading.Thread):
    """Sends event batches and product upserts in turn; retries a write unchanged until it gets a 200."""

    def __init__(self, url: str, key: str, shop: str, items: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.shop, self.items = url, key, shop, items
        self.batches: list[Batch] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.retries = 0
        self.last_token: str | None = None

    def _request(self, n: int) -> tuple[str, str, dict[str, Any], Batch, str | None]:
        if n % 2 == 0:
            base = 1_700_000_000.0
            events = [{"event_id": f"k{n}-{i}", "user_id": f"ku{n % 50}", "item_id": self.items[(n + i) % len(
                self.items)], "type": "view", "timestamp": base + n + i / 100} for i in range(20)]
            return "POST", f"/shops/{self.shop}/events", {"events": events}, Batch("events", [
                e["event_id"] for e in events]), None
        token = f"tok{n}q"
        products = [{"id": f"w{n}-{i}", "title": f"Widget {token} {i}", "category": "Test > Widgets"}
                    for i in range(5)]
        return "PUT", f"/shops/{self.shop}/products", {"products": products}, Batch("products", [
            p["id"] for p in products]), token

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as c:
            while not self.halt.is_set():
                method, path, body, batch, token = self._request(n)
                n += 1
                with self.lock:
                    self.batches.append(batch)
                while not self.halt.is_set():
                    batch.attempted = True
                    try:
                        answer = c.request(method, path, json=body)
                    except httpx.TransportError:
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    if answer.status_code == 200:
                        batch.acked = True
                        if token:
                            self.last_token = token
                        break
                    if answer.status_code == 503:  # not ready yet, or overloaded: retry
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    self.errors.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
                    break
                time.sleep(0.01)

    def snapshot(self) -> list[Batch]:
        with self.lock:
            return list(self.batches)


def _admin_key(home: Path) -> str:
    from shoprank.keys import KeyStore

    return KeyStore(home).create("admin", name="reliability bench")[0]


def run_serve(work: Path, kills: int, seed: int) -> Outcome:
    """Scenario (b): a real server taking writes, killed at random points and restarted on the same port."""
    from tests.support.fakes import tiny_shop

    started = time.perf_counter()
    rng = random.Random(seed)
    outcome = Outcome("serve")
    home = work / "serve-home"
    shop = tiny_shop(home, "live")
    key = _admin_key(home)
    with shop.store() as store:
        items = sorted(p.id for p in store.iter_products())
    server = Server(home)
    server.start()
    client = WriteClient(server.url, key, "live", items)
    client.start()
    lost: set[str] = set()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 1.2))
            server.kill()
            outcome.kills += 1
            time.sleep(0.05)  # let the client record an answer it read just before the kill
            check_batches(client.snapshot(), shop.store_path, outcome, lost)
            outcome.restarts.append(server.start())
            token = client.last_token
            if token is not None:  # an acknowledged product is searchable after the restart
                hits = httpx.get(f"{server.url}/shops/live/search", params={"q": token},
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10)
                if hits.status_code != 200 or not hits.json()["hits"]:
                    outcome.failed_reads += 1
        time.sleep(0.5)
    finally:
        client.halt.set()
        client.join(30)
        server.stop()
    batches = client.snapshot()
    check_batches(batches, shop.store_path, outcome, lost)
    outcome.acknowledged = sum(len(x.ids) for x in batches if x.acked)
    outcome.notes.append(f"{sum(x.acked for x in batches)} writes acknowledged, {client.retries} retries")
    if client.errors:
        outcome.failed_reads += len(client.errors)
        outcome.notes.append(f"unexpected answers: {client.errors[:3]}")
    outcome.seconds = time.perf_counter() - started
    return outcome


# ------------------------------------------------------------------------------------------ (c, d) bundles
def check_bundles(models: Path, kind: str, acked: list[str], outcome: Outcome) -> str:
    """After a kill: LATEST opens and verifies, is the last acknowledged bundle or a newer complete one, and
    no visible bundle is half-written. Returns LATEST. Left-over staging folders are removed (housekeeping)."""
    from shoprank.bundles import BundleError, latest_version, list_versions, open_bundle

    latest = latest_version(models, kind)
    try:
        open_bundle(models, kind, latest)
    except BundleError as exc:
        outcome.partial += 1
        outcome.notes.append(f"LATEST does not open: {exc}")
    if acked and latest in acked[:-1]:
        outcome.lost += 1  # an acknowledged bundle was replaced by an older one
    for version in list_versions(models, kind):
        try:
            open_bundle(models, kind, version)
        except BundleError as exc:
            outcome.partial += 1
            outcome.notes.append(f"visible bundle does not verify: {exc}")
    assert latest is not None
    return latest


def staging_folders(models: Path, kind: str) -> int:
    """Staging folders present (a killed writer's, or a living writer's)."""
    from shoprank.bundles import STAGING_PREFIX

    return sum(p.name.startswith(STAGING_PREFIX) for p in (models / kind).iterdir())


def prune(models: Path, kind: str, keep: str) -> None:
    """Housekeeping between kill points: remove every bundle but ``keep``, so the disk stays small."""
    from shoprank.bundles import list_versions

    for version in list_versions(models, kind):
        if version != keep:
            shutil.rmtree(models / kind / version)


def _served(url: str, key: str, path: str) -> str | None:
    answer = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return answer.json()["model_version"] if answer.status_code == 200 else None


def run_bundle_kills(name: str, home: Path, shop_name: str, kind: str, read_path: str, kills: int, seed: int,
                     writer: Callable[[], subprocess.Popen[str]], ack_word: str, *, server_watch: float = 0.2,
                     spread: tuple[float, float] = (0.05, 1.1)) -> Outcome:
    """Kill a bundle writer (publisher or trainer) at random points while a server serves the bundles.

    After each kill: the bundles on disk are checked; the running server must have kept answering and must
    serve LATEST (its watcher picks it up); then the server itself is killed and restarted, timed to ready,
    and must serve LATEST again.
    """
    from shoprank.shops import Shop

    started = time.perf_counter()
    rng = random.Random(seed)
    outcome = Outcome(name)
    key = _admin_key(home)
    models = Shop(shop_name, home).models_path
    server = Server(home, watch=server_watch)
    server.start()
    acked: list[str] = []
    staging_left = 0
    """Staging folders the killed writers left."""

    def acks(out: str) -> list[str]:
        return [line.split()[-1] if ack_word == "ACK" else line.split()[3] for line in out.splitlines()
                if line.startswith(ack_word)]

    # a first writer run to completion times the writer's life (and gives the server a bundle of its kind)
    t0 = time.perf_counter()
    first = writer()
    assert first.stdout is not None
    while True:
        line = first.stdout.readline()
        if not line:
            raise RuntimeError(f"{name}: the writer exited ({first.wait()}) before publishing")
        if line.startswith(ack_word):
            acked += acks(line)
            break
    life = time.perf_counter() - t0
    kill9(first)
    try:
        while outcome.kills < kills:
            reader = Reader(server.url, key, read_path)
            reader.start()
            process = writer()
            time.sleep(rng.uniform(*spread) * life)
            kill9(process)
            outcome.kills += 1
            assert process.stdout is not None
            acked += acks(process.stdout.read())
            latest = check_bundles(models, kind, acked, outcome)
            deadline = time.monotonic() + max(5.0, 20 * server_watch)
            while time.monotonic() < deadline and reader.version != latest:
                time.sleep(0.05)
            reader.halt.set()
            reader.join(60)
            if reader.version != latest:
                outcome.failed_reads += 1
                outcome.notes.append(f"the running server served {reader.version}, LATEST is {latest}")
            outcome.failed_reads += len(reader.failures)
            if reader.failures:
                outcome.notes.append(f"failed reads: {reader.failures[:3]}")
            staging_left += staging_folders(models, kind)
            server.kill()
            outcome.restarts.append(server.start())
            if _served(server.url, key, read_path) != latest:
                outcome.failed_reads += 1
                outcome.notes.append(f"after a restart the server does not serve LATEST {latest}")
            outcome.leftovers += staging_folders(models, kind)  # the restarted server removes them
            prune(models, kind, latest)
    finally:
        server.stop()
    outcome.acknowledged = len(acked)
    outcome.notes.append(f"{staging_left} staging folders left by killed writers (never visible); "
                         f"{outcome.leftovers} still there after the server's restart")
    outcome.notes.append(f"{len(acked)} bundles acknowledged; a writer lives {life:.1f} s until its first publish; "
                         f"kills drawn in {spread[0]:.0%}-{spread[1]:.0%} of that")
    outcome.seconds = time.perf_counter() - started
    return outcome


def run_publish(work: Path, kills: int, seed: int, *, megabytes: float = 2.0) -> Outcome:
    """Scenario (c): kill -9 while bundles are being published (no training before each publish)."""
    from tests.support.fakes import tiny_shop

    home = work / "publish-home"
    tiny_shop(home, "pub")

    def writer() -> subprocess.Popen[str]:
        return python("-c", PUBLISHER, "pub", str(home), "search", str(megabytes), "0", stdout=subprocess.PIPE,
                      errors=work / "writers.log")

    return run_bundle_kills("publish", home, "pub", "search", "/shops/pub/search?q=drill", kills, seed, writer,
                            "ACK", spread=(0.5, 4.0))


def train_shop(home: Path, name: str = "train", users: int = 300, seed: int = 0) -> None:
    """A tiny shop (fake bundles) with enough synthetic events to train the real recommender on."""
    from shoprank.data.records import parse_event
    from tests.support.fakes import tiny_shop

    shop = tiny_shop(home, name)
    rng = random.Random(seed)
    with shop.store() as store:
        ids = sorted(p.id for p in store.iter_products())
        base = time.time() - 200_000
        store.append_events([parse_event({"event_id": f"s{u}-{j}", "user_id": f"su{u}", "item_id": rng.choice(ids),
                                          "type": "view", "timestamp": base + u * 100 + j})
                             for u in range(users) for j in range(8)])


def run_train(work: Path, kills: int, seed: int, *, trainer: str = "real") -> Outcome:
    """Scenario (d): kill -9 during training (``shoprank train recommend``, or a stand-in with ``fake``)."""
    home = work / "train-home"
    train_shop(home)

    def writer() -> subprocess.Popen[str]:
        if trainer == "real":
            return python("-m", "shoprank", "train", "recommend", "--shop", "train", "--home", str(home),
                          "--epochs", "2", "--threads", "1", "--quiet", stdout=subprocess.PIPE,
                          errors=work / "writers.log")
        return python("-c", PUBLISHER, "train", str(home), "recommend", "1", "1.0", stdout=subprocess.PIPE,
                      errors=work / "writers.log")

    ack = "published recommend bundle" if trainer == "real" else "ACK"
    outcome = run_bundle_kills("train", home, "train", "recommend", "/shops/train/users/su1/recommendations",
                               kills, seed, writer, ack, server_watch=0.5)
    outcome.notes.append(f"trainer: {trainer}")
    return outcome


RUNNERS = {"ingest": run_ingest, "serve": run_serve, "publish": run_publish, "train": run_train}


def main(argv: list[str] | None = None) -> int:
    from bench.common import table, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kill points per scenario (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {SCENARIOS}")
    parser.add_argument("--trainer", choices=["real", "fake"], default="real",
                        help="train scenario: the real 'shoprank train recommend' (about 20 s a run) or a stand-in")
    parser.add_argument("--work", default=None, help="folder for the scenarios' shops (default: a temporary one)")
    parser.add_argument("--json", default="reliability", help="result name under bench/results/")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; valid: {', '.join(SCENARIOS)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="shoprank-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = _load()
    outcomes = []
    for i, name in enumerate(names):
        print(f"{name}: {args.kills} kill points ...", flush=True)
        kwargs = {"trainer": args.trainer} if name == "train" else {}
        outcome = RUNNERS[name](work, args.kills, args.seed + i, **kwargs)
        print(f"  {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s; {'; '.join(outcome.notes)}",
              flush=True)
        outcomes.append(outcome)
    rows = []
    for o in outcomes:
        s = o.summary()
        rows.append([o.scenario, o.kills, o.acknowledged, o.lost, o.duplicates, o.partial, o.failed_reads,
                     o.leftovers if o.scenario in ("publish", "train") else "-",
                     f"{s['restart_median_s']:.2f}" if o.restarts else "-",
                     f"{s['restart_max_s']:.2f}" if o.restarts else "-", f"{o.seconds:.0f}"])
    print(table(["scenario", "kills", "acked", "lost", "dups", "partial", "failed reads", "staging left",
                 "restart p50 s", "restart max s", "run s"], rows))
    path = write_json(args.json, {"command": "python -m bench.reliability " + " ".join(argv or []),
                                  "kills": args.kills, "seed": args.seed, "trainer": args.trainer,
                                  "load_before": load_before, "load_after": _load(),
                                  "scenarios": [o.summary() for o in outcomes]})
    print(f"written {path}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(o.ok for o in outcomes) else 1


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
