"""Recommendation quality: the published bundle, as served, beside every peer, leave-one-out full ranking.

    shoprank datasets import amazon-games --shop games --home /tmp/srhome
    shoprank train recommend --shop games --home /tmp/srhome --profile full
    /tmp/recbole_venv/bin/python bench/recbole_sasrec.py --store /tmp/srhome/games/store.sqlite   # optional peer
    python bench/rec_quality.py --shop games --home /tmp/srhome

Prints one table (NDCG@10, HR@10, MRR; the same for cold test items, <= 2 training occurrences;
catalogue coverage@10; intra-list diversity@10), the served model by history length (as logged; cut to
the latest 2 and 1 events; the new-user protocol, the whole history hidden), checks the targets on the
shipped configuration alone, measures the in-process latency of ``Recommender.recommend`` and writes
bench/results/rec_quality.json. The served model is scored through ``Recommender.score_batch``: the
ranking stage ``recommend`` answers with, batched, and its cold slot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, median, write_json  # noqa: E402

TARGET_NDCG, TARGET_RATIO, TARGET_COLD_HR = 0.080, 1.2, 0.05


def recbole_result(path: Path, split, catalogue):  # noqa: ANN001, ANN201
    """RecBole's per-user ranks (bench/recbole_sasrec.py) in the harness's user order."""
    from shoprank.recommend.evaluate import K, ModelResult

    data = json.loads(path.read_text())
    users = data["users"]
    ranks = np.full(len(split.test_targets), float(split.n_items), dtype=np.float64)
    top = np.zeros((len(split.test_targets), K), dtype=np.int64)
    missing = mismatched = 0
    for row, user in enumerate(split.test_histories.users):
        if user not in users:
            missing += 1
            continue
        rank, items, target = users[user]
        if catalogue.index.get(target) != split.test_targets[row]:
            mismatched += 1
        ranks[row] = rank
        top[row] = [catalogue.index.get(i, 0) for i in items]
    note = f"{data['epochs']} epochs, {data['seconds']:.0f} s; RecBole's own test: {data['recbole_reported_test']}"
    if missing or mismatched:
        note += f"; {missing} users missing, {mismatched} with another test item"
    return ModelResult(data["model"], ranks, top, data["seconds"], note)


def latency(shop, n_users: int = 300, threads: int = 1) -> dict[str, float]:  # noqa: ANN001
    import torch

    from shoprank.recommend import Recommender

    torch.set_num_threads(threads)
    started = time.perf_counter()
    rec = Recommender.load(shop)
    load_s = time.perf_counter() - started
    with shop.store() as store:
        users = sorted({e.user_id for e in store.iter_events()})
    rng = np.random.default_rng(0)
    sample = [users[i] for i in rng.choice(len(users), min(n_users, len(users)), replace=False)]
    for user in sample[:20]:
        rec.recommend(user)  # warm-up
    times, cpu = [], []
    for user in sample:
        t, c = time.perf_counter(), time.process_time()
        rec.recommend(user, k=10)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)  # one thread: what the call costs without other load
    return {"load_s": load_s, "median_ms": median(times), "p95_ms": float(np.percentile(times, 95)),
            "median_cpu_ms": median(cpu), "users": len(sample), "threads": threads,
            "load_average": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", default="games")
    parser.add_argument("--home", default=None)
    parser.add_argument("--recbole", default=str(RESULTS / "recbole_sasrec_ranks.json"),
                        help="per-user ranks written by bench/recbole_sasrec.py (skipped when missing)")
    parser.add_argument("--no-tune-als", action="store_true", help="ALS with default settings, no validation grid")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--breakdown-sample", type=int, default=10_000,
                        help="test users whose histories are cut to 2, 1 and 0 events (sampled, seed 0)")
    args = parser.parse_args()

    from shoprank.recommend.benchmark import ALL_MODELS, BREAKDOWN_COLUMNS, evaluate_shop
    from shoprank.recommend.evaluate import format_table, summarise
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    started = time.perf_counter()
    result = evaluate_shop(shop, ALL_MODELS, threads=args.threads, tune_als_grid=not args.no_tune_als,
                           breakdown=True, breakdown_sample=args.breakdown_sample)
    rows = result["rows"]
    recbole = Path(args.recbole)
    if recbole.exists():
        rows.append(summarise(recbole_result(recbole, result["split"], result["catalogue"]), result["split"],
                              result["vectors"]))
    else:
        print(f"(no RecBole ranks at {recbole}: run bench/recbole_sasrec.py in its venv for that row)")
    ours = next(r for r in rows if r["model"].startswith("shoprank"))
    peers = [r for r in rows if r is not ours]
    best_peer = max(peers, key=lambda r: r["ndcg@10"])
    knn = next(r for r in peers if r["model"].startswith("item-kNN"))
    checks = {
        f"NDCG@10 >= {TARGET_NDCG}": ours["ndcg@10"] >= TARGET_NDCG,
        f"NDCG@10 >= {TARGET_RATIO} x item-kNN ({knn['ndcg@10']:.4f})":
            ours["ndcg@10"] >= TARGET_RATIO * knn["ndcg@10"],
        f"NDCG@10 >= {TARGET_RATIO} x best peer ({best_peer['model']}: {best_peer['ndcg@10']:.4f})":
            ours["ndcg@10"] >= TARGET_RATIO * best_peer["ndcg@10"],
        f"cold-item HR@10 >= {TARGET_COLD_HR}": ours["cold_hr@10"] >= TARGET_COLD_HR,
    }
    lat = latency(shop)
    checks["recommend() median < 10 ms (wall clock)"] = lat["median_ms"] < 10
    checks["recommend() median < 10 ms (CPU time, 1 thread)"] = lat["median_cpu_ms"] < 10
    print(f"\nleave-one-out full ranking, shop '{shop.name}': {result['users']:,} test users, "
          f"{result['items']:,} items, {result['cold_users']:,} cold test items (<= 2 training occurrences)")
    print(format_table(rows))
    print("\nthe served model by history length (cut protocols on a sample of test users):")
    print(format_table(result["by_history_length"], BREAKDOWN_COLUMNS))
    for row in rows:
        if row.get("note"):
            print(f"  {row['model']}: {row['note']}")
    if result["als_tuning"]:
        print("  ALS grid (valid NDCG@10): " + ", ".join(
            f"{t['factors']}f/a{t['alpha']:g}: {t['valid_ndcg@10']:.4f}" for t in result["als_tuning"]))
    print(f"\nlatency: load {lat['load_s']:.2f} s; recommend() median {lat['median_ms']:.2f} ms wall clock "
          f"(p95 {lat['p95_ms']:.2f} ms), {lat['median_cpu_ms']:.2f} ms CPU time, over {lat['users']} users, "
          f"{lat['threads']} thread, load average {lat['load_average']:.1f} on {os.cpu_count()} cores")
    for name, ok in checks.items():
        print(f"  [{'met' if ok else 'NOT met'}] {name}")
    path = write_json("rec_quality", {
        "shop": shop.name, "users": result["users"], "items": result["items"], "cold_users": result["cold_users"],
        "rows": rows, "by_history_length": result["by_history_length"], "als_tuning": result["als_tuning"],
        "latency": lat, "checks": checks,
        "seconds": time.perf_counter() - started,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
