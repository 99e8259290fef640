"""CPU time of one recommendation as the server makes it, in-process, one thread, with its main stages.

    python -m bench.recommend_cpu --home H --shop games [--users 300]
    python -m bench.with_code /tmp/before bench.recommend_cpu --home H --shop games --out recommend_cpu_before

Each request is what ``GET /shops/S/users/U/recommendations?k=10`` runs without the HTTP layer: the shop's
cascade over its recommend engine (the engine call, the re-ranking stage, the page's reasons) and the page's
hydration, for users of the bench pool (``bench.serve.request_paths``: the most recent events' users), timed as
the thread's CPU time (``time.thread_time``), one after the other, after 20 unrecorded ones. Stage times come
from wrapping the ranking stage's parts (each source's scores, the candidate features, the trees) with the same
clock; a stage the code does not have (an older version run through ``bench.with_code``) is left out. Run two
versions of the code alternately, several rounds, and compare the pairs: the machine's speed drifts between
minutes. With ``--answers F`` it also writes each user's served page (ids and scores) to F, and with
``--against E`` prints how many users got exactly the same page (ids; ids and every score) as in an earlier
such file: a change meant to be faster, not different, is checked on the same requests. Writes
bench/results/recommend_cpu_<shop>.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import table, write_json
from bench.serve import percentile, request_paths

WARM_UP = 20


def _timed(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    """Replace ``owner.name`` by a wrapper adding its thread CPU seconds to ``spent[label]`` (if it exists)."""
    inner: Callable[..., Any] | None = getattr(owner, name, None)
    if inner is None:
        return

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - began

    setattr(owner, name, wrapper)


def run(home: str, shop: str, users: int) -> dict[str, Any]:
    from shoprank.cascade import Request
    from shoprank.recommend import features
    from shoprank.rerank.shop import request_seed
    from shoprank.serving.common import engine_of
    from shoprank.serving.read_routes import _cascade
    from shoprank.serving.registry import EngineRegistry, limit_threads

    state = EngineRegistry(home).get(shop)
    engine = engine_of(state, "recommend")
    limit_threads(1)  # after loading, as the server does: PyTorch is imported by the load
    spent: dict[str, float] = defaultdict(float)
    stage = getattr(engine, "stage", None)
    if stage is not None and getattr(engine, "model", None) is not None:
        for source in stage.sources:
            _timed(source, "score", f"source {source.name}", spent)
        _timed(features, "build", "candidate features", spent)
        if stage.ranker is not None:
            _timed(stage.ranker, "predict", "trees (LambdaMART)", spent)
        _timed(type(stage), "rank", "ranking stage (all of it)", spent)
    paths = request_paths(Path(home), shop, "recommend", users + WARM_UP)
    asked = [urllib.parse.unquote(p.split("/users/")[1].split("/")[0]) for p in paths]
    totals = []
    answers: dict[str, list[list[Any]]] = {}
    for n, user in enumerate(asked):
        if n == WARM_UP:
            spent.clear()
        began = time.thread_time()
        ask = Request("recommend", user_id=user, per_page=10, explore=True, seed=request_seed(user))
        page = _cascade(state, recommend=engine).run_one(ask)
        state.catalog.hydrate(page.items)
        if n >= WARM_UP:
            totals.append(time.thread_time() - began)
            answers[user] = [[item.id for item in page.items], [float(item.score) for item in page.items]]
    timed = len(totals)
    return {"users": timed, "items": engine.n_items,
            "total": {"median_ms": 1000 * statistics.median(totals), "p99_ms": 1000 * percentile(totals, 99),
                      "mean_ms": 1000 * statistics.fmean(totals)},
            "stages_mean_ms": {name: 1000 * value / timed for name, value in sorted(spent.items(),
                                                                                   key=lambda kv: -kv[1])},
            "answers": answers}


def compare(answers: dict[str, list[list[Any]]], earlier: dict[str, list[list[Any]]]) -> dict[str, int]:
    """How many users both files answered got the same ids, and the same ids and scores."""
    both = sorted(set(answers) & set(earlier))
    return {"users": len(both), "same_ids": sum(answers[u][0] == earlier[u][0] for u in both),
            "same_ids_and_scores": sum(answers[u] == earlier[u] for u in both)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--users", type=int, default=300, help="requests timed (after 20 warm-up ones)")
    parser.add_argument("--out", default="")
    parser.add_argument("--answers", default="", help="write each user's served page (ids, scores) to this file")
    parser.add_argument("--against", default="", help="compare the served pages with this earlier --answers file")
    args = parser.parse_args(argv)
    result = run(args.home, args.shop, args.users)
    answers = result.pop("answers")
    if args.answers:
        Path(args.answers).write_text(json.dumps(answers))
    if args.against:
        result["against"] = compare(answers, json.loads(Path(args.against).read_text()))
    total = result["total"]
    rows = [["one recommendation (cascade + hydrate)", round(total["median_ms"], 2), round(total["p99_ms"], 2),
             round(total["mean_ms"], 2)]]
    rows += [[name, "", "", round(ms, 2)] for name, ms in result["stages_mean_ms"].items()]
    print(table(["thread CPU", "median ms", "p99 ms", "mean ms"], rows))
    print(f"{result['users']} requests, {result['items']:,} items")
    if args.against:
        same = result["against"]
        print(f"against {args.against}: of {same['users']} users, {same['same_ids']} the same ids, "
              f"{same['same_ids_and_scores']} the same ids and scores")
    print(write_json(args.out or f"recommend_cpu_{args.shop}", {"args": vars(args), **result}))
    return result


if __name__ == "__main__":
    main()
