"""``evaluate search|recommend --diversity-sweep``: the re-ranker's accuracy–diversity trade-off, one row per λ.

The library side is :mod:`shoprank.experiments.diversity_sweep` (the sweep and the default rule) and
:mod:`shoprank.experiments.diversity_report` (table and plot). This never trains: it measures the shop's
published bundle and says what to run when there is none.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError

SWEEP_OPTIONS = ("lambdas", "sample", "seed", "plot", "table", "part")


def add_sweep(parser: argparse.ArgumentParser, task: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "shoprank_sweep_defaults", Path(__file__).resolve().parents[1] / "experiments" / "sweep_defaults.py")
    assert spec is not None and spec.loader is not None
    defaults = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(defaults)
    DEFAULT_LAMBDAS, DEFAULT_SAMPLE = defaults.DEFAULT_LAMBDAS, defaults.DEFAULT_SAMPLE  # noqa: N806

    unit = "users" if task == "recommend" else "judged queries"
    group = parser.add_argument_group("diversity sweep")
    group.add_argument("--diversity-sweep", action="store_true",
                       help="measure the re-ranker at each λ of --lambdas instead: NDCG@10, HR@10, intra-list "
                            "diversity, category and catalogue coverage, novelty; picks a default λ")
    group.add_argument("--lambdas", default=None, metavar="L,L,...",
                       help=f"the λ to measure (default {','.join(f'{x:g}' for x in DEFAULT_LAMBDAS)}; 0 is always "
                            "added)")
    group.add_argument("--sample", type=int, default=None, metavar="N",
                       help=f"a fixed random sample of N {unit} (default {DEFAULT_SAMPLE[task]:,}; 0 = all)")
    group.add_argument("--seed", type=int, default=None, help="seed of the sample (default 0)")
    group.add_argument("--part", choices=("valid", "test"), default=None,
                       help="measure on the validation targets / queries (default; the only part a default λ is "
                            "chosen on) or on the held-out test ones (the figure of the λ that ships, read once)")
    group.add_argument("--plot", default=None, metavar="FILE.png",
                       help=f"the NDCG-vs-diversity plot (default SHOP/reports/diversity-sweep-{task}.png)")
    group.add_argument("--table", default=None, metavar="FILE.md",
                       help=f"the table as markdown (default SHOP/reports/diversity-sweep-{task}.md)")


def check_sweep_options(args: argparse.Namespace) -> None:
    """Sweep options without ``--diversity-sweep`` are a mistake worth saying."""
    if not args.diversity_sweep:
        given = [f"--{name}" for name in SWEEP_OPTIONS if getattr(args, name) is not None]
        if given:
            raise CommandError(f"{', '.join(given)} only apply with --diversity-sweep")


def _command(args: argparse.Namespace, task: str, lambdas: list[float], sample: int) -> str:
    """The command line that repeats this sweep (for the table file)."""
    words = ["shoprank", "evaluate", task, "--shop", args.shop]
    if args.home:
        words += ["--home", args.home]
    words += ["--diversity-sweep", "--lambdas", ",".join(f"{x:g}" for x in lambdas), "--sample", str(sample)]
    if args.part == "test":
        words += ["--part", "test"]
    if args.seed:
        words += ["--seed", str(args.seed)]
    return " ".join(shlex.quote(w) for w in words)


def run_sweep(args: argparse.Namespace, shop: Any, task: str) -> int:
    from shoprank.bundles import BundleError
    from shoprank.experiments.diversity_report import format_table, plot_title, write_plot, write_table
    from shoprank.experiments.diversity_sweep import (
        DEFAULT_LAMBDAS,
        DEFAULT_SAMPLE,
        SWEEPS,
        choose_default,
        parse_lambdas,
    )

    lambdas = parse_lambdas(args.lambdas if args.lambdas is not None else DEFAULT_LAMBDAS)
    sample = DEFAULT_SAMPLE[task] if args.sample is None else args.sample
    if sample < 0:
        raise CommandError("--sample must be 0 (all) or more")
    reports = shop.path / "reports"
    plot = Path(args.plot) if args.plot else reports / f"diversity-sweep-{task}.png"
    table = Path(args.table) if args.table else reports / f"diversity-sweep-{task}.md"
    progress = not getattr(args, "quiet", False)
    print(f"diversity sweep of shop '{shop.name}' ({task}), λ = {', '.join(f'{x:g}' for x in lambdas)}", flush=True)
    try:
        result = SWEEPS[task](shop, lambdas, sample=sample, seed=args.seed or 0, progress=progress,
                              report=lambda line: print(f"  {line}", flush=True), part=args.part or "valid")
    except BundleError as exc:
        raise CommandError(f"{exc} (the diversity sweep measures a trained shop; it never trains)") from None
    choice = choose_default(result.rows)
    print()
    print(format_table(result.rows))
    base = result.rows[0]
    if base.ndcg == result.ranker_ndcg:
        print(f"λ = 0 reproduces the ranker's own NDCG@10 ({result.ranker_ndcg:.4f}): the shop's rules moved nothing")
    else:
        print(f"λ = 0 gives NDCG@10 {base.ndcg:.4f}, the ranker alone {result.ranker_ndcg:.4f}: "
              "the shop's rules (hidden, pinned, filtered products) change the lists at every λ")
    if (args.part or "valid") == "valid":
        print(("default (chosen on validation): " if choice.lam is not None else "default: none qualifies; ")
              + choice.reason)
    else:
        print("measured on held-out test data: no default is chosen here (choose on validation, the default --part)")
    write_table(result, choice, table, _command(args, task, lambdas, sample))
    write_plot({plot_title(result): result.rows}, plot)
    print(f"wrote the plot to {plot} and the table to {table}")
    if args.json:
        payload = {**result.to_dict(), "chosen": choice.lam, "why": choice.reason,
                   "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote the results to {args.json}")
    print(f"swept in {result.seconds:.0f} s")
    return 0
