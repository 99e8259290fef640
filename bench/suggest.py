"""Suggestion lookups on the Home Depot catalogue: index build time and per-lookup latency, in-process.

    python -m bench.suggest [--lookups 2000] [--seed 0]

The index holds every product title and category of ``homedepot/products.csv`` and, as logged queries, the
judged queries (each counted as searched twice, so all qualify). Prefixes are the first 2-8 characters of
judged queries drawn at random; "typo" prefixes change one letter of a 5-8 character prefix.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import table, write_json
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.data.records import parse_product
from shoprank.suggest import build_index


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from shoprank.datasets import homedepot

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("SHOPRANK_DATA", str(Path("..") / "shared" / "datasets")))
    args = parser.parse_args(argv)
    rows = homedepot.load(Path(args.data) / homedepot.FOLDER)
    products = [parse_product(raw) for _, raw in rows.products]
    queries = sorted({raw["query"] for _, raw in rows.judgments})
    log = [Outcome(Impression(f"{q}/{n}", time.time(), "search", ("x",), (0,), query=q, total=1))
           for q in queries for n in range(2)]
    started = time.perf_counter()
    index = build_index(products, log)
    build = time.perf_counter() - started
    rng = random.Random(args.seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: dict[str, Any] = {"products": len(products), "queries": len(queries), "entries": len(index),
                           "build_seconds": round(build, 2)}
    rows_out = []
    for kind in ("exact", "typo"):
        spent = []
        for _ in range(args.lookups):
            q = rng.choice(queries)
            prefix = q[: rng.randint(2, 8)] if kind == "exact" else q[: rng.randint(5, 8)]
            if kind == "typo" and len(prefix) >= 3:
                i = rng.randrange(1, len(prefix))
                prefix = prefix[:i] + rng.choice(letters) + prefix[i + 1 :]
            index._memo.clear()  # every lookup from scratch (the server keeps recent prefixes)
            t = time.perf_counter()
            index.suggest(prefix)
            spent.append((time.perf_counter() - t) * 1000)
        spent.sort()
        out[kind] = {"p50_ms": statistics.median(spent), "p99_ms": spent[int(len(spent) * 0.99)]}
        rows_out.append([kind, out[kind]["p50_ms"], out[kind]["p99_ms"]])
    print(f"{len(products):,} products, {len(queries):,} logged queries, {len(index):,} suggestions; "
          f"index built in {build:.1f} s")
    print(table(["prefixes", "p50 ms", "p99 ms"], rows_out))
    print(f"written to {write_json('suggest', {'args': vars(args), **out})}")
    return out


if __name__ == "__main__":
    main()
