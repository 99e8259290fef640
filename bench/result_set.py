"""The served search path on every held-out query, full catalogue: what result-set semantics cost or gain.

    python -m bench.result_set --home H --shop homedepot --label before           # the code as it was
    python -m bench.result_set --home H --shop homedepot --label after --calibrate

Each run asks the shop's cascade (loaded as the server loads it: the int8 ONNX query tower, the shop's
re-ranking settings, exploration off) for the first 100 results of every held-out judged query (the split the
bundle recorded), and scores the list served: NDCG@10 and Recall@100 of products graded at least
lowest + 0.75 * range (the protocol of ``shoprank evaluate search``, ``served (cascade)`` column). It also
counts answers shorter than 100 (a result set smaller than the list Recall@100 reads), empty answers, and
random-letter queries answered with nothing. ``--calibrate`` first sets the dense threshold of the latest
bundle on its validation queries (``shoprank.search.calibration.calibrate_bundle``, a new bundle version);
``--base`` prints the untuned encoder's calibration on the same validation queries (how the default of a
stack without a threshold was chosen). Runs with different labels are printed side by side.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, table, write_json

TOP = 100
BROAD = ["drill", "paint", "1/2 in pvc elbow", "garden hose", "led light bulb", "door", "wood screws", "ceiling fan",
         "tile", "toilet"]
"""Broad queries (thousands of matches each on Home Depot) for ``--latency``."""


def latency(shop: Any, repeats: int = 3) -> float:
    """Milliseconds per search of :data:`BROAD` through the cascade, facets on, after one warm-up pass."""
    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade

    cascade = load_cascade(shop, ("search",))
    for q in BROAD:
        cascade.run_one(Request("search", q, facets=True))
    started = time.perf_counter()
    for _ in range(repeats):
        for q in BROAD:
            cascade.run_one(Request("search", q, facets=True))
    return round((time.perf_counter() - started) / (repeats * len(BROAD)) * 1000, 1)


class _WholeList:
    """The search engine without ``search_set``: the cascade re-ranks the whole listed set as result objects
    (how every request was answered before the ranked set)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        if name == "search_set":
            raise AttributeError(name)
        return getattr(self.engine, name)


def latency_side_by_side(shop: Any, repeats: int = 7) -> dict[str, Any]:
    """Each :data:`BROAD` query through one loaded cascade both ways, alternating, facets on (the engine and
    re-ranking; plus the facet counts the server makes over the listed ids): the whole listed set re-ranked as
    result objects vs the ranked set (result objects for the ranked head and the page only). Median of
    ``repeats`` runs each; the two answers must be identical."""
    import statistics
    from dataclasses import replace

    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade
    from shoprank.serving.catalog import Catalog

    cascade = load_cascade(shop, ("search",))
    whole = replace(cascade, search=_WholeList(cascade.search))
    catalog = Catalog(cascade.store)
    rows = []
    for q in BROAD:
        ask = Request("search", q, facets=True)
        a, b = cascade.run_one(ask), whole.run_one(ask)
        same = (a.items, a.total, a.facet_ids, catalog.facets(a.facet_ids)) == \
            (b.items, b.total, b.facet_ids, catalog.facets(b.facet_ids))
        times: dict[str, list[float]] = {"whole": [], "ranked": [], "facets": []}
        for _ in range(repeats):
            for name, c in (("whole", whole), ("ranked", cascade)):
                started = time.perf_counter()
                page = c.run_one(ask)
                counted = time.perf_counter()
                catalog.facets(page.facet_ids)
                times[name].append((time.perf_counter() - started) * 1000)
                if name == "ranked":
                    times["facets"].append((time.perf_counter() - counted) * 1000)
        rows.append({"query": q, "total": a.total, "listed": len(a.facet_ids), "identical": same,
                     "whole_ms": round(statistics.median(times["whole"]), 1),
                     "ranked_ms": round(statistics.median(times["ranked"]), 1),
                     "facets_ms": round(statistics.median(times["facets"]), 1)})
    return {"repeats": repeats, "queries": rows}


def _calibration_module() -> Any:
    """This checkout's calibration module, also when ``shoprank`` is imported from an older tree (``before``)."""
    try:
        from shoprank.search import calibration

        return calibration
    except ImportError:
        path = Path(__file__).resolve().parents[1] / "shoprank" / "search" / "calibration.py"
        spec = importlib.util.spec_from_file_location("_calibration", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["_calibration"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module


def base_calibration(shop: Any) -> dict[str, Any]:
    """The untuned encoder's threshold on the bundle's validation queries (its vectors from the shop cache)."""
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.search.run_eval import load_held_out, relevant_gain
    from shoprank.search.train import profile_config, split_training
    from shoprank.search.vectors import base_vectors

    bundle, data, stack = load_held_out(shop, load_cross=False)
    valid = data.query_set(split_training(data, profile_config(bundle.params.get("profile", "full"))).valid)
    stack.encoder = BiEncoder.load(None, max_length=stack.config.doc_max_length)
    stack.dense.vectors = base_vectors(stack.catalog.products, stack.encoder, stack.config.doc_max_length,
                                       Path(shop.path) / "cache")
    return _calibration_module().calibrate(stack, valid, valid.queries(), relevant_gain(data)).to_dict()


def served(shop: Any, progress: bool, split: str = "test") -> dict[str, Any]:
    from tqdm.auto import tqdm

    from shoprank.bundles import open_bundle
    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade
    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k
    from shoprank.search.data import SPLIT_SEED, load_search_data

    bundle = open_bundle(shop.models_path, "search", verify=False)
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=bundle.params["holdout"],
                                seed=bundle.params.get("split_seed", SPLIT_SEED))
    if split == "valid":  # the bundle's own validation queries (split_training of its profile): for choosing
        from shoprank.search.train import profile_config, split_training

        config = profile_config(bundle.params.get("profile", "full"))
        test = data.query_set(split_training(data, config).valid)
    else:
        test = data.query_set(data.test)
    gain = 0.75 * data.top_gain
    cascade = load_cascade(shop, ("search",))
    page_size = cascade.reranking.reranker.config.page_size
    queries = [q for q in test.queries() if max(test.gains[q].values()) > 0]
    nonsense = _calibration_module().nonsense_queries()
    ndcg: list[float] = []
    recall: list[float] = []
    lengths: list[int] = []
    totals: list[int] = []
    per_query: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for q in tqdm(queries, desc="served path", disable=not progress):
        page = cascade.run_one(Request("search", q, per_page=page_size, limit=TOP))
        gains = test.gains[q]
        ndcg.append(ndcg_at_k(page.ids, gains, 10))
        relevant = {pid for pid, g in gains.items() if g >= gain}
        if relevant:
            recall.append(recall_at_k(page.ids, relevant, TOP))
        lengths.append(len(page.ids))
        totals.append(page.total)
        per_query[q] = {"ndcg@10": round(ndcg[-1], 4), "recall@100": round(recall[-1], 4) if relevant else None,
                        "total": page.total, "ids": page.ids}
    seconds = time.perf_counter() - started
    empty = sum(cascade.run_one(Request("search", q, per_page=page_size, limit=TOP)).total == 0 for q in nonsense)
    return {
        "bundle": bundle.version, "split": split, "queries": len(queries), "recall_queries": len(recall),
        "ndcg@10": round(sum(ndcg) / len(ndcg), 4), "recall@100": round(sum(recall) / len(recall), 4),
        "shorter_than_100": sum(n < TOP for n in lengths), "empty": sum(n == 0 for n in lengths),
        "median_total": sorted(totals)[len(totals) // 2], "nonsense_queries": len(nonsense),
        "nonsense_empty": empty, "seconds": round(seconds, 1),
        "dense_threshold": getattr(getattr(cascade.search.stack, "config", None), "dense_threshold", None),
        "per_query": per_query,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--shop", default="homedepot")
    parser.add_argument("--label", required=True, help="names this run in the side-by-side table (before, after)")
    parser.add_argument("--calibrate", action="store_true", help="calibrate the latest bundle's dense threshold first")
    parser.add_argument("--base", action="store_true", help="also print the untuned encoder's calibration")
    parser.add_argument("--latency", action="store_true", help="only time broad queries through the cascade")
    parser.add_argument("--latency-side-by-side", action="store_true",
                        help="only time broad queries both ways in one process: the whole listed set re-ranked "
                             "as result objects vs the ranked set (answers checked identical)")
    parser.add_argument("--split", choices=("test", "valid"), default="test",
                        help="test: the held-out queries (read once); valid: the bundle's validation queries")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    import torch

    from shoprank.shops import Shop

    torch.set_num_threads(args.threads)
    shop = Shop(args.shop, args.home)
    extra: dict[str, Any] = {}
    if args.latency:
        print(f"{args.label}: {latency(shop)} ms per broad query (facets on)")
        return 0
    if args.latency_side_by_side:
        result = latency_side_by_side(shop)
        write_json(f"result_set_latency_{args.label}", {"label": args.label, **result})
        rows = result["queries"]
        print(table(["query", "total", "listed", "identical", "whole list ms", "ranked set ms", "of which facets"],
                    [[r["query"], r["total"], r["listed"], r["identical"], r["whole_ms"], r["ranked_ms"],
                      r["facets_ms"]] for r in rows]))
        print(f"median over queries: whole list {sorted(r['whole_ms'] for r in rows)[len(rows) // 2]} ms, "
              f"ranked set {sorted(r['ranked_ms'] for r in rows)[len(rows) // 2]} ms")
        return 0
    if args.calibrate:
        version, chosen = _calibration_module().calibrate_bundle(shop)
        extra["calibration"] = {"version": version, **chosen}
        print(f"calibrated: {json.dumps(extra['calibration'])}")
    if args.base:
        extra["base_calibration"] = base_calibration(shop)
        print(f"untuned encoder: {json.dumps(extra['base_calibration'])}")
    result = served(shop, not args.quiet, args.split)
    command = "python -m bench.result_set " + " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in vars(args).items()
        if v not in (False, None))
    write_json(f"result_set_{args.label}", {"label": args.label, "command": command, **result, **extra})
    runs = [r for p in sorted(RESULTS.glob("result_set_*.json")) if "ndcg@10" in (r := json.loads(p.read_text()))]
    keys = ["bundle", "split", "dense_threshold", "queries", "ndcg@10", "recall@100", "shorter_than_100", "empty",
            "median_total", "nonsense_empty", "seconds"]
    print(table(["run", *keys], [[r["label"], *[r.get(k, "—") for k in keys]] for r in runs]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
