"""Search quality on held-out queries: Home Depot (both protocols), CrowdFlower (10 folds by query,
and with Home Depot's models only), Multi-CPR (Chinese). Prints one table and writes JSON.

    python -m bench.search_quality --home /tmp/srhome [--profile full] [--retrain] [--sets homedepot,...]

Home Depot uses the shop's latest search bundle (trained with 20% of queries held out; trained here
first when missing or with --retrain, and the training time is recorded). Nothing is ever
trained or tuned on the queries a figure is measured on.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.common import RESULTS, table, write_json

SETS = ("homedepot", "crowdflower", "crowdflower-transfer", "multicpr")
IMPORT_NAME = {"homedepot": "homedepot", "crowdflower": "crowdflower", "multicpr-zh": "multicpr-zh"}
TARGETS = {
    ("homedepot", "full catalogue", "ndcg@10"): 0.45,
    ("homedepot", "full catalogue", "recall@100"): 0.85,
    ("homedepot", "judged re-ranking", "ndcg@10"): 0.945,
    ("crowdflower", "folds", "ndcg@10"): 0.93,
    ("crowdflower", "transfer", "ndcg@10"): 0.90,
    ("multicpr-zh", "folds", "first_is_best"): 0.97,
}


def ensure_shop(name: str, home: str) -> Any:
    from shoprank.datasets import import_rows, load_dataset
    from shoprank.shops import Shop

    shop = Shop(name, home)
    if not shop.exists():
        with shop.store() as store:
            import_rows(store, load_dataset(IMPORT_NAME[name]))
    return shop


def target_of(shop: str, protocol: str, metric: str) -> float | None:
    for (s, p, m), value in TARGETS.items():
        if s == shop and p in protocol and m == metric:
            return value
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="/tmp/srhome")
    parser.add_argument("--profile", choices=["quick", "full"], default="full", help="Home Depot training profile")
    parser.add_argument("--fold-profile", choices=["quick", "full"], default="quick",
                        help="profile of each CrowdFlower / Multi-CPR fold")
    parser.add_argument("--retrain", action="store_true", help="train Home Depot even if a bundle exists")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--fold-cross-encoder", action="store_true",
                        help="train a cross-encoder in every CrowdFlower fold too (slow on CPU)")
    parser.add_argument("--fold-fine-tuning", action="store_true",
                        help="fine-tune the query encoder in every CrowdFlower fold too (slow on CPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-queries", type=int, default=None,
                        help="Home Depot / transfer: a fixed random sample of the held-out queries (CPU budgets)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    import torch

    from shoprank.bundles import latest_version, open_bundle
    from shoprank.search.evaluate import LABELS, METHODS
    from shoprank.search.publish import SearchTraining, train_and_publish
    from shoprank.search.run_eval import evaluate_bundle, evaluate_folds, evaluate_transfer

    torch.set_num_threads(args.threads)
    wanted = args.sets.split(",")
    progress = not args.quiet
    results: list[tuple[str, Any]] = []
    extra: dict[str, Any] = {}
    if "homedepot" in wanted or "crowdflower-transfer" in wanted:
        hd = ensure_shop("homedepot", args.home)
        if args.retrain or latest_version(hd.models_path, "search") is None:
            start = time.perf_counter()
            published = train_and_publish(hd, SearchTraining(profile=args.profile, threads=args.threads),
                                          progress=progress, announce=print)
            print(f"search models for 'homedepot' published as version {published.version}")
            extra["homedepot_training_minutes"] = round((time.perf_counter() - start) / 60, 1)
        extra["homedepot_bundle"] = open_bundle(hd.models_path, "search", verify=False).params
    if "homedepot" in wanted:
        results += evaluate_bundle(hd, full=True, progress=progress, max_queries=args.max_queries)
    if "crowdflower" in wanted:
        cf = ensure_shop("crowdflower", args.home)
        results += evaluate_folds(cf, args.folds, args.fold_profile, progress=False, threads=args.threads,
                                  cross=args.fold_cross_encoder, fine_tune=args.fold_fine_tuning)
    if "crowdflower-transfer" in wanted:
        cf = ensure_shop("crowdflower", args.home)
        results += evaluate_transfer(cf, hd, progress=progress, max_queries=args.max_queries)
    if "multicpr" in wanted:
        zh = ensure_shop("multicpr-zh", args.home)
        results += evaluate_folds(zh, args.folds, args.fold_profile, progress=False, threads=args.threads)

    command = "python -m bench.search_quality " + " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in vars(args).items()
        if v not in (False, None))
    for shop, result in results:  # one file per measured set, so sets can be measured in separate runs
        kind = "transfer" if "transfer" in result.protocol else "folds" if "folds" in result.protocol else \
            "full" if "full" in result.protocol else "judged"
        key = f"{shop}-{kind}"
        write_json(f"search_quality_{key}", {"set": shop, "protocol": result.protocol, "queries": result.counts(),
                                             "means": result.means(), "command": command, **extra})
    payload = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("search_quality_*.json"))]
    print()
    print(render(payload, LABELS, METHODS))
    path = write_json("search_quality", {"results": payload})
    print(f"\nwritten to {path} (each set's own command and time are in its entry)")
    return 0


def render(payload: list[dict[str, Any]], labels: dict[str, str], order: tuple[str, ...]) -> str:
    """The table of every measured set; a target's verdict reads the configuration the shop ships, never the
    best column."""
    from shoprank.search.evaluate import LABELS, SHIPPED

    methods = [m for m in order if any(m in r["means"] for r in payload)]
    rows = []
    for entry in payload:
        means = entry["means"]
        metrics = ["first_is_best"] if entry["set"] == "multicpr-zh" else ["ndcg@10", "recall@100"]
        for metric in metrics:
            present = [m for m in methods if metric in means.get(m, {})]
            if not present:
                continue
            target = target_of(entry["set"], entry["protocol"], metric)
            shipped = next((m for p, m in SHIPPED.items() if p in entry["protocol"]), "fused")
            if shipped not in present:  # folds and transfer: the fused ranker is what the shop would ship
                shipped = "fused" if "fused" in present else "fused_fast"
            value = means.get(shipped, {}).get(metric)
            verdict = "" if target is None else ("no shipped figure" if value is None else
                                                 f"{'met' if value >= target else 'not met'} ({LABELS[shipped]})")
            rows.append([f"{entry['set']}, {entry['protocol']}, {metric}", max(entry["queries"].values())]
                        + [means[m][metric] if m in present else "—" for m in methods]
                        + [target if target is not None else "—", verdict, entry["when"][:16]])
    return table(["set / protocol / metric", "queries", *[labels[m] for m in methods], "target", "", "measured"],
                 rows)


if __name__ == "__main__":
    raise SystemExit(main())
