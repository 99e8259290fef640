"""Real held-out requests through both doors: a real ``shoprank serve`` and ``shoprank run``, compared.

    python -m bench.doors --home H --search-shop homedepot --rec-shop games [--queries 200] [--users 200]

For the search shop, every held-out test query its latest bundle recorded (or a seeded sample of
``--queries``) is asked twice: over HTTP (pages 1 and 2 of 10, ``facets`` on and off) from a real server
process, and through ``shoprank run search --top 20`` (the batch run every search figure scores). For the
recommendation shop, a seeded sample of users is asked ``/users/{id}/recommendations?k=10`` and
``shoprank run recommend --top 10``. Prints one table (requests, identical lists, first differences) and writes
bench/results/doors.json. Exits 1 when any list differs.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_json  # noqa: E402
from bench.processes import Server  # noqa: E402

PER_PAGE = 10


def held_out_queries(home: Path, shop_name: str, n: int | None, seed: int) -> list[str]:
    """The held-out test queries the shop's latest search bundle recorded (a seeded sample of ``n``)."""
    from shoprank.search.run_eval import load_held_out
    from shoprank.shops import Shop

    _, data, _ = load_held_out(Shop(shop_name, home), load_cross=False)
    queries = sorted(data.query_set(data.test).queries())
    if n is not None and n < len(queries):
        queries = sorted(random.Random(seed).sample(queries, n))
    return queries


def sample_users(home: Path, shop_name: str, n: int, seed: int) -> list[str]:
    from shoprank.shops import Shop

    with Shop(shop_name, home).store(create=False) as store:
        users = sorted({event.user_id for event in store.iter_events() if event.user_id})
    return sorted(random.Random(seed).sample(users, min(n, len(users))))


def batch(home: Path, tmp: Path, args: list[str]) -> dict[str, list[str]]:
    from shoprank.cli.main import main
    from shoprank.evaluation.trec import read_run

    out = tmp / "run.txt"
    if main([*args, "--home", str(home), "--out", str(out)]) != 0:
        raise SystemExit(f"shoprank {' '.join(args)} failed")
    return {qid: [pid for pid, _ in pairs] for qid, pairs in read_run(out).items()}


def compare(name: str, pairs: list[tuple[str, list[str], list[str]]]) -> dict[str, Any]:
    differ = [(what, served, ran) for what, served, ran in pairs if served != ran]
    return {"surface": name, "requests": len(pairs), "identical": len(pairs) - len(differ),
            "examples": [{"request": what, "http": served[:10], "batch": ran[:10]} for what, served, ran in differ[:3]]}


def search_door(server: Server, key: str, home: Path, shop: str, queries: list[str], tmp: Path) -> list[dict[str, Any]]:
    file = tmp / "queries.csv"
    with file.open("w", newline="") as handle:  # queries may hold commas: the CSV module quotes them
        writer = csv.writer(handle)
        writer.writerow(["qid", "query"])
        writer.writerows([f"q{n}", q] for n, q in enumerate(queries))
    ran = batch(home, tmp, ["run", "search", "--shop", shop, "--queries", str(file), "--top", str(2 * PER_PAGE),
                            "--quiet"])
    rows = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for facets in ("true", "false"):
            pairs = []
            for n, query in enumerate(queries):
                served: list[str] = []
                for page in (1, 2):
                    answer = client.get(f"/shops/{shop}/search", params={"q": query, "page": page,
                                                                         "per_page": PER_PAGE, "facets": facets})
                    answer.raise_for_status()
                    served += [hit["id"] for hit in answer.json()["hits"]]
                pairs.append((query, served, ran.get(f"q{n}", [])))
            rows.append(compare(f"search, pages 1-2, facets={facets}", pairs))
    return rows


def recommend_door(server: Server, key: str, home: Path, shop: str, users: list[str], tmp: Path) -> dict[str, Any]:
    file = tmp / "users.txt"
    file.write_text("\n".join(users) + "\n")
    ran = batch(home, tmp, ["run", "recommend", "--shop", shop, "--users", str(file), "--top", "10"])
    pairs = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for user in users:
            answer = client.get(f"/shops/{shop}/users/{user}/recommendations", params={"k": 10})
            answer.raise_for_status()
            pairs.append((user, [item["id"] for item in answer.json()["items"]], ran.get(user, [])))
    return compare("recommendations, k=10", pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--search-shop", default=None)
    parser.add_argument("--rec-shop", default=None)
    parser.add_argument("--queries", type=int, default=None, help="a seeded sample of the held-out queries "
                                                                   "(default: all of them)")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.search_shop or args.rec_shop):
        parser.error("name --search-shop, --rec-shop or both")
    from shoprank.keys import KeyStore

    started = time.perf_counter()
    key, _ = KeyStore(args.home).create("admin")
    tmp = args.home / "doors-bench"
    tmp.mkdir(exist_ok=True)
    server = Server(args.home, watch=0, fakes=False)  # the real 'shoprank serve'
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        if args.search_shop:
            queries = held_out_queries(args.home, args.search_shop, args.queries, args.seed)
            rows += search_door(server, key, args.home, args.search_shop, queries, tmp)
        if args.rec_shop:
            users = sample_users(args.home, args.rec_shop, args.users, args.seed)
            rows.append(recommend_door(server, key, args.home, args.rec_shop, users, tmp))
    finally:
        server.stop()
    print(table(["surface", "requests", "identical"], [[r["surface"], r["requests"], r["identical"]] for r in rows]))
    for row in rows:
        for example in row["examples"]:
            print(f"  differs ({row['surface']}) for {example['request']!r}:\n    http  {example['http']}\n"
                  f"    batch {example['batch']}")
    path = write_json("doors", {"rows": rows, "seconds": time.perf_counter() - started,
                                "search_shop": args.search_shop, "rec_shop": args.rec_shop})
    print(f"wrote {path}")
    return 0 if all(r["identical"] == r["requests"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
