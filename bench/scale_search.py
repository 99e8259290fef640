"""Searches on the catalogue ``bench.scale_catalogue`` left in a home, side by side with an earlier result-set code.

    git show REV:shoprank/search/matching.py > /tmp/matching_before.py
    python -m bench.scale_search --home /tmp/scale-home --before /tmp/matching_before.py
    python -m bench.scale_search --home /tmp/scale-home --ef-search 128 512   # HNSW candidate lists side by side

Loads the ``scale`` shop's engine as the server does (``load_search``), embeds ``--queries`` distinct real Home
Depot queries once (their CPU time is added to each search), then runs ``SearchEngine.search(q, k=200,
explain=10)`` for every query with the current ``shoprank.search.matching.result_set`` and with the one in
``--before``, alternating which goes first; CPU time of the engine thread (one thread), and whether both gave the
same page and total. With ``--ef-search A B ...`` the variants are the current code at each HNSW candidate list
instead (the same graph, ``DenseIndex.set_ef_search`` before each call). Writes ``bench/results/scale_search.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_json  # noqa: E402
from bench.scale_catalogue import SHOP, pct, real_queries  # noqa: E402


def run(home: Path, before: Path | None, queries: int, ef_search: list[int] | None = None) -> dict[str, Any]:
    import shoprank.search.matching as matching
    from shoprank.serving.registry import limit_threads, load_search
    from shoprank.shops import Shop

    current = matching.result_set
    variants = {"current": current}
    if before is not None:
        spec = importlib.util.spec_from_file_location("matching_before", before)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["matching_before"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        variants["before"] = module.result_set
    engine = load_search(Shop(SHOP, home))
    limit_threads(1)
    saved_ef = engine.stack.dense.ef_search
    efs = {name: saved_ef for name in variants}
    if ef_search:
        variants = {f"efSearch {ef}": matching.result_set for ef in ef_search}
        efs = {f"efSearch {ef}": ef for ef in ef_search}
    texts = real_queries(queries + 5)
    texts, warm = texts[:-5], texts[-5:]
    for q in warm:
        engine.search(q, k=200, explain=10)
    embed = {}
    for q in texts:
        began = time.thread_time()
        engine.embed_query(q)
        embed[q] = (time.thread_time() - began) * 1000
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    same = 0
    names = list(variants)
    try:
        for i, q in enumerate(texts):
            answers = {}
            for name in names if i % 2 == 0 else names[::-1]:
                matching.result_set = variants[name]
                engine.stack.dense.set_ef_search(efs[name])
                began = time.thread_time()
                items, total = engine.search(q, k=200, explain=10)
                cpu[name].append((time.thread_time() - began) * 1000 + embed[q])
                answers[name] = ([item.id for item in items], total)
            same += len({repr(a) for a in answers.values()}) == 1
    finally:
        matching.result_set = current
        engine.stack.dense.set_ef_search(saved_ef)
    return {"dense": {"kind": engine.stack.dense.kind, "ef_search_saved": saved_ef, "ef_search": efs},
            "products": len(engine.stack.catalog), "queries": len(texts), "identical_answers": same,
            "cpu_ms": {name: {"p50": pct(v, 50), "p99": pct(v, 99), "mean": float(np.mean(v))}
                       for name, v in cpu.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/scale-home")
    parser.add_argument("--before", type=Path, default=None, help="an earlier shoprank/search/matching.py")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ef-search", type=int, nargs="+", default=None,
                        help="compare these HNSW candidate lists (current code) instead of two result-set codes")
    args = parser.parse_args(argv)
    if args.ef_search and args.before:
        parser.error("--ef-search and --before compare different things: give one")
    result = run(Path(args.home), args.before, args.queries, args.ef_search)
    print(f"{result['products']:,} products, {result['queries']} queries, identical answers "
          f"{result['identical_answers']}/{result['queries']}")
    print(table(["variant", "CPU p50 ms", "CPU p99 ms", "mean ms"],
                [[name, f"{v['p50']:.1f}", f"{v['p99']:.1f}", f"{v['mean']:.1f}"]
                 for name, v in result["cpu_ms"].items()]))
    print(f"wrote {write_json('scale_search', result)}")
    return result


if __name__ == "__main__":
    main()
