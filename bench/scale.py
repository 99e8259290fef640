"""The shared PostgreSQL store against the embedded SQLite one, and the replication delay between two replicas.

    python -m bench.scale                                 # a throw-away PostgreSQL server is started and stopped
    python -m bench.scale --pg postgresql://postgres@host:5432/postgres   # databases are made on this server

1. Ingest: ``--events`` events in batches of ``--batch`` (and products in batches of 1,000) through
   ``Store.append_events`` / ``upsert_products``, each batch one committed, fsynced transaction; median of
   ``--repeats`` runs into a fresh store.
2. Reads the server makes per request: a user's history (``user_events``, 200 latest) and 20 products by id
   (``get_products``), from 1 and 4 threads, over the ingested log (PostgreSQL after ``ANALYZE``, as
   autovacuum leaves it shortly after a bulk load).
3. Replication delay: two ``shoprank serve`` processes on one PostgreSQL store (``--sync`` at its default, 1 s);
   a product upserted through one, the time until the other's search returns it (polled every 10 ms); and a
   rule (hide) set through one until the other applies it. The engines are the fake ones of the serving tests:
   the delay is the store's and the follow loop's, not a model's index update.
4. Catalogue embedding with 1 and 2 Ray workers against in-process, and the projection to 10 million products
   (``bench/scale_ray.py`` says how and under which assumptions; ``--part ray`` runs it alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median, table, write_json
from shoprank.data.records import Event, Product

TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase")


def make_events(n: int, users: int) -> list[Event]:
    start = time.time() - 30 * 86_400
    return [Event(f"e{i}", f"u{(i * 7) % users}", f"p{(i * 7919) % 20_000}", TYPES[i % len(TYPES)], start + i * 2.0)
            for i in range(n)]


def make_products(n: int) -> list[Product]:
    return [Product(id=f"p{i}", title=f"Product {i} cordless drill", category="Tools > Drills", price=10.0 + i % 90)
            for i in range(n)]


def ingest(open_store: Callable[[], Any], events: list[Event], products: list[Product], batch: int) -> dict[str, float]:
    with open_store() as store:
        began = time.perf_counter()
        for start in range(0, len(products), 1000):
            store.upsert_products(products[start : start + 1000])
        took_products = time.perf_counter() - began
        began = time.perf_counter()
        for start in range(0, len(events), batch):
            store.append_events(events[start : start + batch])
        took_events = time.perf_counter() - began
        assert store.counts()["events"] == len(events)
    return {"events_s": took_events, "products_s": took_products}


def analyze(url: str) -> None:
    """Planner statistics, as autovacuum would have them a minute after a bulk load."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def reads(store: Any, users: int, seconds: float, threads: int) -> float:
    """Requests per second, one request = one user's history + 20 products by id."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(t: int) -> None:
        i = t
        while time.perf_counter() < stop:
            store.user_events(f"u{(i * 31) % users}", 200)
            store.get_products([f"p{(i * 13 + j * 101) % 20_000}" for j in range(20)])
            i += threads
            done[t] += 1

    began = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    return sum(done) / (time.perf_counter() - began)


def replication_delay(server: str, work: Path, trials: int) -> dict[str, Any]:
    import os

    from bench.pgserver import fresh_database
    from bench.replicas import Replica, search_ids, wait_for
    from shoprank.keys import KeyStore
    from tests.support.fakes import tiny_shop

    home = work / "replicas"
    products: list[float] = []
    rules: list[float] = []
    with fresh_database(server, "scale") as url:
        os.environ["SHOPRANK_STORE"] = url
        try:
            tiny_shop(home, "tiny")
            key, _ = KeyStore(home).create("admin")
            one, two = Replica(home, url), Replica(home, url)
            one.start()
            two.start()
            try:
                with one.client(key) as a, two.client(key) as b:
                    for t in range(trials):
                        token = f"zq{t}x"
                        a.put("/shops/tiny/products", json={"products": [
                            {"id": f"rep-{t}", "title": f"Replicated {token}", "category": "Tools > Test"}]}
                        ).raise_for_status()
                        products.append(wait_for(lambda token=token: bool(search_ids(b, "tiny", token)), 30))
                        time.sleep(0.137 * (t % 7))  # land at different points of the follow interval
                    shown = search_ids(b, "tiny", "puzzle", 50)
                    for t in range(min(trials, len(shown))):
                        a.put("/shops/tiny/rules", json={"rules": [
                            {"id": 1, "action": "hide", "products": [shown[t]]}]}).raise_for_status()
                        rules.append(wait_for(lambda t=t: shown[t] not in search_ids(b, "tiny", "puzzle", 50), 30))
                        time.sleep(0.137 * (t % 7))
            finally:
                one.stop()
                two.stop()
        finally:
            os.environ.pop("SHOPRANK_STORE", None)

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"n": len(values), "median_s": statistics.median(values),
                "p95_s": ordered[int(0.95 * (len(ordered) - 1))], "max_s": ordered[-1]}

    return {"product": summary(products), "rule": summary(rules), "sync_seconds": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=None, help="URL of a PostgreSQL server to make databases on "
                        "(default: start a throw-away one from the installed binaries)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per batch (one transaction each)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=20, help="replication-delay measurements per kind")
    parser.add_argument("--part", choices=["all", "stores", "ray"], default="all",
                        help="stores: ingest, reads and replication; ray: the embedding on Ray (default all)")
    parser.add_argument("--ray-products", type=int, default=2000, help="products embedded per Ray configuration")
    args = parser.parse_args()
    if args.part in ("all", "ray"):
        from bench import scale_ray

        ray_results = scale_ray.run(args.ray_products, 32)
        scale_ray.report(ray_results)
        print(f"written to {write_json('scale_ray', ray_results)}")
        if args.part == "ray":
            return

    from bench import pgserver
    from shoprank.store import open_store

    work = Path(tempfile.mkdtemp(prefix="shoprank-scale-"))
    server_folder = None
    server = args.pg
    if server is None:
        server_folder = Path(tempfile.mkdtemp(prefix="shoprank-scale-pg-"))
        server = pgserver.start(server_folder)
    events, products = make_events(args.events, args.users), make_products(args.products)
    results: dict[str, Any] = {"events": args.events, "products": args.products, "batch": args.batch, "stores": {}}
    try:
        for name in ("sqlite", "postgresql"):
            runs = []
            for run in range(args.repeats):
                if name == "sqlite":
                    runs.append(ingest(lambda run=run: open_store(work / f"s{run}.sqlite"), events, products,
                                       args.batch))
                else:
                    with pgserver.fresh_database(server, "scale") as url:
                        runs.append(ingest(lambda url=url: open_store(url, "bench"), events, products, args.batch))
            row: dict[str, Any] = {
                "events_per_s": args.events / median([r["events_s"] for r in runs]),
                "products_per_s": args.products / median([r["products_s"] for r in runs]),
                "runs": runs,
            }
            if name == "sqlite":
                with open_store(work / "s0.sqlite") as store:
                    row["reads_per_s"] = {t: reads(store, args.users, args.read_seconds, t) for t in (1, 4)}
            else:
                with pgserver.fresh_database(server, "scale") as url:
                    ingest(lambda url=url: open_store(url, "bench"), events, products, args.batch)
                    analyze(url)
                    with open_store(url, "bench") as store:
                        row["reads_per_s"] = {t: reads(store, args.users, args.read_seconds, t) for t in (1, 4)}
            results["stores"][name] = row
            print(f"{name}: done", flush=True)
        results["replication"] = replication_delay(server, work, args.trials)
    finally:
        if server_folder is not None:
            pgserver.stop(server_folder)
            shutil.rmtree(server_folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    stores = results["stores"]
    print(table(["store", f"events/s (batches of {args.batch})", "products/s (batches of 1000)",
                 "reads/s, 1 thread", "reads/s, 4 threads"],
                [[name, f"{r['events_per_s']:,.0f}", f"{r['products_per_s']:,.0f}",
                  f"{r['reads_per_s'][1]:,.0f}", f"{r['reads_per_s'][4]:,.0f}"] for name, r in stores.items()]))
    rep = results["replication"]
    print(table(["written through replica 1", "served by replica 2 after: median", "p95", "max", "trials"],
                [[kind, f"{rep[kind]['median_s']:.2f} s", f"{rep[kind]['p95_s']:.2f} s", f"{rep[kind]['max_s']:.2f} s",
                  rep[kind]["n"]] for kind in ("product", "rule")]))
    print(f"written to {write_json('scale', results)}")


if __name__ == "__main__":
    main()
