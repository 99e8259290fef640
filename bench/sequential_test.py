"""The experiment report's sequential test on simulated A/A and A/B traffic: false positives under peeking, power.

    python -m bench.sequential_test [--runs 400] [--answers 40000] [--seed 7]

A/A: both arms click with probability 0.10; the always-valid mSPRT p-value (``shoprank.abtest.stats``) is read
after every answer, a classic z-test every 1,000 answers; a run is a false positive when a read falls under
0.05. A/B: 0.10 against 0.13 on 20,000 answers (power), and the answers the mSPRT needed to reject.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from bench.common import table, write_json
from shoprank.abtest.stats import difference, msprt_p, msprt_path


def traffic(rng: np.random.Generator, n: int, pa: float, pb: float) -> tuple[np.ndarray, np.ndarray]:
    arm = rng.integers(0, 2, n)
    return arm, (rng.random(n) < np.where(arm == 1, pb, pa)).astype(np.int8)


def naive_peeks(arm: np.ndarray, clicked: np.ndarray, every: int = 1000) -> bool:
    na, xa = np.cumsum(arm == 0), np.cumsum(clicked * (arm == 0))
    nb, xb = np.cumsum(arm == 1), np.cumsum(clicked * (arm == 1))
    return any(difference(int(xa[i]), int(na[i]), int(xb[i]), int(nb[i]))[3] < 0.05
               for i in range(every - 1, len(arm), every))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--answers", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    msprt = naive = 0
    for _ in range(args.runs):
        arm, clicked = traffic(rng, args.answers, 0.10, 0.10)
        msprt += msprt_p(arm, clicked) < 0.05
        naive += naive_peeks(arm, clicked)
    found, needed = 0, []
    for _ in range(args.runs):
        arm, clicked = traffic(rng, 20_000, 0.10, 0.13)
        where, log_lambda = msprt_path(arm, clicked)
        crossed = np.flatnonzero(log_lambda >= math.log(20))
        if len(crossed):
            found += 1
            needed.append(int(where[crossed[0]]) + 1)
    out = {"aa_false_positive_msprt": msprt / args.runs, "aa_false_positive_naive_peeking": naive / args.runs,
           "power_10_vs_13_at_20000": found / args.runs,
           "median_answers_to_decide": float(np.median(needed)) if needed else None}
    print(table(["what", "value"], [
        [f"A/A false positives, mSPRT read after every answer ({args.runs} runs of {args.answers:,})",
         f"{out['aa_false_positive_msprt']:.1%}"],
        ["A/A false positives, z-test read every 1,000 answers", f"{out['aa_false_positive_naive_peeking']:.1%}"],
        ["A/B 10% vs 13%: decided within 20,000 answers", f"{out['power_10_vs_13_at_20000']:.1%}"],
        ["A/B 10% vs 13%: median answers to decide", f"{out['median_answers_to_decide']:,.0f}"]]))
    print(f"written to {write_json('sequential_test', {'args': vars(args), **out})}")
    return out


if __name__ == "__main__":
    main()
