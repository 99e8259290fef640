"""The diversity trade-off of the re-ranker: one row per λ, for recommendations and for search.

    python bench/diversity_sweep.py recommend --shop games --home /tmp/srhome --sample 5000
    python bench/diversity_sweep.py search --shop homedepot --home /tmp/srhome --sample 1000

A thin wrapper over :mod:`shoprank.experiments.diversity_sweep` (the same code as
``shoprank evaluate recommend|search --diversity-sweep``; the protocol is described there): it writes
bench/results/diversity_sweep_TASK.json and docs/diversity_tradeoff.png (a panel per task run so far),
prints the table and the default the rule picks (the λ with the most diversity among those losing at
most 1 % relative NDCG@10 and raising intra-list diversity by at least 15 %), or why none qualifies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=("recommend", "search"), help="what to sweep")
    parser.add_argument("--shop", default=None, help="default: games for recommend, homedepot for search")
    parser.add_argument("--home", default="/tmp/srhome")
    parser.add_argument("--lambdas", default="0,0.1,0.2,0.3,0.5,0.7")
    parser.add_argument("--sample", type=int, default=2000,
                        help="a fixed random sample of users / judged queries (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--part", choices=("valid", "test"), default="valid",
                        help="validation targets / queries (default: where the default λ is chosen) or test")
    parser.add_argument("--name", default=None, help="result file bench/results/NAME.json "
                        "(default diversity_sweep_TASK; the plot shows the default files)")
    args = parser.parse_args()

    import torch

    from shoprank.experiments.diversity_report import format_table, plot_title, write_plot
    from shoprank.experiments.diversity_sweep import SWEEPS, SweepResult, choose_default, parse_lambdas
    from shoprank.shops import Shop

    torch.set_num_threads(args.threads)
    shop = Shop(args.shop or {"recommend": "games", "search": "homedepot"}[args.task], args.home)
    result = SWEEPS[args.task](shop, parse_lambdas(args.lambdas), sample=args.sample, seed=args.seed,
                               progress=True, report=print, part=args.part)
    choice = choose_default(result.rows)  # reported as the default only when measured on validation
    payload = {**result.to_dict(), "chosen": choice.lam, "why": choice.reason,
               "command": "python bench/diversity_sweep.py " + " ".join(sys.argv[1:])}
    print(write_json(args.name or f"diversity_sweep_{args.task}", payload))
    curves = {}
    for task in ("recommend", "search"):
        path = RESULTS / f"diversity_sweep_{task}.json"
        if path.is_file():
            saved = SweepResult.from_dict(json.loads(path.read_text()))
            curves[plot_title(saved)] = saved.rows
    if curves:
        print(write_plot(curves, ROOT / "docs/diversity_tradeoff.png"))
    print(format_table(result.rows))
    print(("default (chosen on validation): " if args.part == "valid" else "test figures; no default chosen: ")
          + choice.reason)


if __name__ == "__main__":
    main()
