"""How many sessions A/B testing and interleaving need to name the better of two rankers, and how often each
names the wrong one.

    python -m bench.experiments [--runs 100] [--queries 300] [--max-sessions 400000] [--seed 0]

A synthetic shop with a known truth: each query has ``--candidates`` products of graded relevance (a product
is relevant with probability 0.2, its grade uniform in [0.5, 1]; the rest 0). Ranker A orders them by
relevance plus Gaussian noise of scale 0.3, ranker B by relevance plus noise 0.45: a known quality gap (NDCG@10
of each is printed). Shoppers follow the simulated-shopper model of ``shoprank.learning.simulate``
(position-based examination, noisy clicks) on 10 shown results.

A/B: each session draws a query and a shopper assigned to A or B at random; its outcome is whether it was
clicked; the mSPRT (``shoprank.abtest.stats``, the test the experiment report uses) is read after every
session, and the run ends at the first session where it rejects at 5%. Interleaving: each session shows the
team-draft interleaving of both lists; its outcome is the team with more clicks; the sequential sign test is
read after every session. Reported per method: median and 90th percentile of the sessions needed, the share of
runs that decided within ``--max-sessions``, and the share that named the worse ranker.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any

import numpy as np

from bench.common import table, write_json
from shoprank.abtest.interleave import preference, team_draft
from shoprank.abtest.stats import msprt_path, sign_path
from shoprank.evaluation.metrics import ndcg_at_k
from shoprank.learning.simulate import ShopperModel

SHOWN = 10


def world(rng: np.random.Generator, queries: int, candidates: int, noise: tuple[float, float]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """relevance [q, c] and the two rankers' top lists [q, SHOWN] (candidate indices)."""
    relevant = rng.random((queries, candidates)) < 0.2
    relevance = np.where(relevant, rng.uniform(0.5, 1.0, (queries, candidates)), 0.0)
    tops = []
    for scale in noise:
        scores = relevance + rng.normal(0, scale, relevance.shape)
        tops.append(np.argsort(-scores, axis=1)[:, :SHOWN])
    return relevance, tops[0], tops[1]


def clicks(model: ShopperModel, rel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vectorised :meth:`ShopperModel.session` (clicks only) for shown lists of relevance ``rel`` [n, SHOWN]."""
    active = rng.random(len(rel)) < model.active
    examined = rng.random(rel.shape) < model.examination(np.arange(rel.shape[1]))[None, :]
    clicked = rng.random(rel.shape) < model.noise + (1 - 2 * model.noise) * rel
    return active[:, None] & examined & clicked


def ndcg(relevance: np.ndarray, top: np.ndarray) -> float:
    out = []
    for q in range(len(relevance)):
        ids = [int(i) for i in top[q]]
        gains = {int(i): float(g) for i, g in enumerate(relevance[q]) if g > 0}
        if gains:
            out.append(ndcg_at_k(ids, gains, SHOWN))
    return float(np.mean(out))


def ab_run(relevance: np.ndarray, tops: tuple[np.ndarray, np.ndarray], model: ShopperModel,
           rng: np.random.Generator, max_sessions: int, chunk: int = 20_000) -> tuple[int | None, int | None]:
    """(sessions needed, winner 0 = A / 1 = B) of one A/B run; (None, None) when it did not decide."""
    arms = np.zeros(0, np.int8)
    hits = np.zeros(0, np.int8)
    target = math.log(20)  # 1 / alpha
    while len(arms) < max_sessions:
        n = min(chunk, max_sessions - len(arms))
        arm = rng.integers(0, 2, n).astype(np.int8)
        query = rng.integers(0, len(relevance), n)
        shown = np.where(arm[:, None] == 0, tops[0][query], tops[1][query])
        rel = np.take_along_axis(relevance[query], shown, axis=1)
        arms = np.concatenate([arms, arm])
        hits = np.concatenate([hits, clicks(model, rel, rng).any(axis=1).astype(np.int8)])
        where, log_lambda = msprt_path(arms, hits)
        crossed = np.flatnonzero(log_lambda >= target)
        if len(crossed):
            at = int(where[crossed[0]]) + 1
            a, b = arms[:at] == 0, arms[:at] == 1
            return at, int(hits[:at][b].mean() > hits[:at][a].mean())
    return None, None


def interleave_run(relevance: np.ndarray, tops: tuple[np.ndarray, np.ndarray], model: ShopperModel,
                   rng: np.random.Generator, max_sessions: int, chunk: int = 2_000) -> tuple[int | None, int | None]:
    prefs: list[int] = []
    seeds = random.Random(int(rng.integers(0, 2**31)))
    target = math.log(20)
    while len(prefs) < max_sessions:
        n = min(chunk, max_sessions - len(prefs))
        query = rng.integers(0, len(relevance), n)
        lists = [team_draft([str(i) for i in tops[0][q]], [str(i) for i in tops[1][q]], SHOWN,
                            seeds.randrange(2**31)) for q in query]
        shown = np.array([[int(i) for i in items] for items, _ in lists])
        rel = np.take_along_axis(relevance[query], shown, axis=1)
        clicked = clicks(model, rel, rng)
        for (items, teams), row in zip(lists, clicked, strict=True):
            prefs.append(preference(teams, items, [items[i] for i in np.flatnonzero(row)], ("A", "B")))
        where, log_lambda = sign_path(np.asarray(prefs))
        crossed = np.flatnonzero(log_lambda >= target)
        if len(crossed):
            at = int(where[crossed[0]]) + 1
            decided = np.asarray(prefs[:at])
            return at, int((decided < 0).sum() > (decided > 0).sum())
    return None, None


def summarise(results: list[tuple[int | None, int | None]], max_sessions: int) -> dict[str, Any]:
    needed = [n for n, _ in results if n is not None]
    wrong = sum(1 for n, w in results if n is not None and w == 1)  # B is the worse ranker
    return {"runs": len(results), "decided": len(needed), "decided_share": len(needed) / len(results),
            "median_sessions": float(np.median(needed)) if needed else None,
            "p90_sessions": float(np.percentile(needed, 90)) if needed else None,
            "wrong": wrong, "wrong_share": wrong / len(results), "max_sessions": max_sessions}


def _whole(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--max-sessions", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()
    rng = np.random.default_rng(args.seed)
    relevance, top_a, top_b = world(rng, args.queries, args.candidates, (0.3, 0.45))
    model = ShopperModel()
    quality = {"A": ndcg(relevance, top_a), "B": ndcg(relevance, top_b)}
    ab = [ab_run(relevance, (top_a, top_b), model, np.random.default_rng([args.seed, 1, r]), args.max_sessions)
          for r in range(args.runs)]
    inter = [interleave_run(relevance, (top_a, top_b), model, np.random.default_rng([args.seed, 2, r]),
                            args.max_sessions) for r in range(args.runs)]
    out = {"A/B (mSPRT on click-through)": summarise(ab, args.max_sessions),
           "interleaving (team draft, sequential sign test)": summarise(inter, args.max_sessions)}
    print(f"ranker A NDCG@10 {quality['A']:.4f}, ranker B {quality['B']:.4f} (true relevance); "
          f"{args.runs} runs each, 95% confidence, at most {args.max_sessions:,} sessions a run")
    print(table(["method", "median sessions", "p90 sessions", "decided", "named the worse ranker"],
                [[name, _whole(r["median_sessions"]), _whole(r["p90_sessions"]), f"{r['decided']}/{r['runs']}",
                  f"{r['wrong']}/{r['runs']}"] for name, r in out.items()]))
    ratio = None
    if out["A/B (mSPRT on click-through)"]["median_sessions"] and \
            out["interleaving (team draft, sequential sign test)"]["median_sessions"]:
        ratio = out["A/B (mSPRT on click-through)"]["median_sessions"] / \
            out["interleaving (team draft, sequential sign test)"]["median_sessions"]
        print(f"interleaving needs {ratio:.1f}x fewer sessions (medians)")
    payload = {"args": vars(args), "quality": quality, "methods": out, "ratio": ratio,
               "seconds": round(time.time() - started, 1)}
    print(f"written to {write_json('experiments', payload)}")
    return payload


if __name__ == "__main__":
    main()
