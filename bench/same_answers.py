"""A shop's search answers, written so that two versions of the code can be compared on the same bundle.

    python -m bench.same_answers --home H --shop S --out /tmp/before.json                       # one version
    python -m bench.same_answers --home H --shop S --out /tmp/after.json --against /tmp/before.json   # another

Loads the shop's latest search bundle as the server does (``load_search``) and records, for ``--queries``
distinct real Home Depot queries (seeded): the dense index's own top 200 (rows and cosines,
``stack.dense.search`` over the live rows), the served page (``SearchEngine.search(q, k=50, explain=10)``: ids,
scores, score parts, total), the same with a filter (a price one product in ten is under, or, for a catalogue
without prices, the most common brand: the filtered dense widening) and ``closest`` (20). Then it upserts
products in memory only (the store is not written): new versions of ``--upserts`` existing products (a word
added to the title) and as many new ones, and records the same again. With ``--against`` it prints how many
queries gave exactly the same answers (every id, float and total) as the earlier file. Writes ``--out`` (and
bench/results/same_answers.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_json  # noqa: E402
from bench.scale_catalogue import real_queries  # noqa: E402


def a_filter(products: list[Any]) -> dict[str, Any]:
    """A price one product in ten is under; without prices, the most common brand."""
    prices = np.asarray([p.price for p in products if p is not None and p.price is not None])
    if len(prices):
        return {"price_max": float(np.percentile(prices, 10))}
    brands = Counter(p.brand for p in products if p is not None and p.brand)
    return {"brand": brands.most_common(1)[0][0]} if brands else {}


def answers(engine: Any, queries: list[str], wanted: dict[str, Any]) -> dict[str, list[Any]]:
    from shoprank.results import SearchFilters

    stack = engine.stack
    out: dict[str, list[Any]] = {"dense": [], "page": [], "filtered": [], "closest": []}
    cheap = SearchFilters(**wanted) if wanted else None
    for q in queries:
        rows, cos = stack.dense.search(engine.embed_query(q)[None, :], 200, stack.catalog.alive)
        out["dense"].append([rows[0].tolist(), cos[0].tolist()])
        for key, filters in (("page", None), ("filtered", cheap)):
            if key == "filtered" and filters is None:
                continue
            items, total = engine.search(q, k=50, explain=10, filters=filters)
            out[key].append([total, [[i.id, i.score, i.parts] for i in items]])
        out["closest"].append([[i.id, i.score] for i in engine.closest(q, 20)])
    return out


def run(home: Path, shop_name: str, n_queries: int, n_upserts: int) -> dict[str, Any]:
    import torch

    from shoprank.serving.registry import limit_threads, load_search
    from shoprank.shops import Shop

    torch.set_num_threads(1)
    began = time.perf_counter()
    engine = load_search(Shop(shop_name, home))
    load_s = time.perf_counter() - began
    limit_threads(1)  # FAISS is imported now: one thread, so an HNSW insertion is the same every run
    stack = engine.stack
    wanted = a_filter(stack.catalog.products)
    queries = real_queries(n_queries)
    result: dict[str, Any] = {"shop": shop_name, "products": len(stack.catalog.ids), "queries": queries,
                              "dense": {"kind": stack.dense.kind, "ef_search": stack.dense.ef_search},
                              "filter": wanted, "load_s": load_s}
    result["loaded"] = answers(engine, queries, wanted)
    step = max(1, len(stack.catalog.ids) // max(n_upserts, 1))
    changed = [dataclasses.replace(p, title=p.title + " deluxe") for p in stack.catalog.products[::step][:n_upserts]
               if p is not None]
    new = [dataclasses.replace(p, id=f"{p.id}-new") for p in stack.catalog.products[step // 2::step][:n_upserts]
           if p is not None]
    began = time.perf_counter()
    engine.upsert_products(changed + new)
    result["upsert"] = {"changed": len(changed), "new": len(new), "seconds": time.perf_counter() - began}
    result["upserted"] = answers(engine, queries, wanted)
    return result


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if a["queries"] != b["queries"]:
        raise SystemExit("the two files were made on different queries: run both with the same --queries")
    out = {}
    for stage in ("loaded", "upserted"):
        for key, left in a[stage].items():
            right = b[stage][key]
            out[f"{stage}: {key}"] = {"identical": sum(json.dumps(x) == json.dumps(y)
                                                       for x, y in zip(left, right, strict=True)),
                                      "queries": len(left)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--upserts", type=int, default=20, help="existing products changed, and new ones added")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--against", type=Path, default=None, help="an earlier --out to compare with")
    args = parser.parse_args(argv)
    result = run(args.home, args.shop, args.queries, args.upserts)
    args.out.write_text(json.dumps(result))
    print(f"{result['shop']}: {result['products']:,} rows, dense {result['dense']}, {len(result['queries'])} queries, "
          f"{result['upsert']['changed']} products changed and {result['upsert']['new']} added in "
          f"{result['upsert']['seconds']:.2f} s; wrote {args.out}")
    if args.against is not None:
        result["against"] = {"file": str(args.against), **compare(json.loads(args.against.read_text()), result)}
        print(table(["answers", "identical", "queries"],
                    [[k, v["identical"], v["queries"]] for k, v in result["against"].items() if k != "file"]))
    print(f"wrote {write_json('same_answers', {k: v for k, v in result.items() if k not in ('loaded', 'upserted')})}")
    return result


if __name__ == "__main__":
    main()
