"""Shilling (reliability scenario 13): fake users pushing unpopular items, with and without the defences.

    python bench/shilling.py                                   # games shop in /tmp/shilling-home (imported if missing)
    python bench/shilling.py --users-sample 5000 --epochs 1    # a cheap version

Replays the shop's events plus fake users (1% and 5% of the genuine users), new accounts created
in a burst near the end of the log. Attack users push 1-3 of 10 unpopular target items (seeded:
3-10 training occurrences), each sent twice, among popular filler items (a bandwagon attack);
control users have the same count, profile lengths, timing and repeats, over random items. Each
arm trains the recommender with the same settings in memory and is tested on the genuine users
only (leave-one-out, full ranking): NDCG@10 and HR@10 of their held-out items, and target HR@10,
the share of genuine test users with a target item in their top 10 (items in their history
excluded). Uplift = target HR@10 (attack) - target HR@10 (control), in points. An arm whose
training log is identical to an earlier arm's (the defences removed every fake event) reuses
that arm's model: training is deterministic, so it would come out the same.
Writes bench/results/shilling.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_json  # noqa: E402
from shoprank.data.records import Event  # noqa: E402
from shoprank.recommend.defences import STAGES, Defences, apply_defences  # noqa: E402
from shoprank.recommend.interactions import Catalogue  # noqa: E402

TARGET_COUNT, TARGET_MIN, TARGET_MAX = 10, 3, 10  # unpopular targets: 3-10 occurrences in training
POPULAR_POOL = 200  # bandwagon fillers come from the most popular items, drawn by popularity
BURST_S = 2 * 3600.0  # fake accounts are created within the last two hours of the log
GAP_S = (5.0, 60.0)  # seconds between a fake user's events
PASS_POINTS = 2.0  # scenario 13: uplift at 5% with defences on stays under 2 points


@dataclass
class Setup:
    """What every arm shares: the genuine log, its test split, the targets and the item text vectors."""

    catalogue: Catalogue
    events: list[Event]
    split: Any  # LooViews of the genuine log: the test users and items of every arm
    vectors: np.ndarray
    targets: np.ndarray  # item indices
    lengths: np.ndarray  # genuine sequence lengths (fake profile lengths are drawn from them)
    popular: np.ndarray  # filler pool (item indices), most popular first
    popular_p: np.ndarray  # draw probabilities of the pool
    end: float  # the genuine log's last timestamp


def load_shop(shop_name: str, home: str) -> Any:
    from shoprank.shops import Shop

    shop = Shop(shop_name, home)
    if not shop.exists():
        print(f"importing amazon-games into shop '{shop_name}' in {home} ...", flush=True)
        subprocess.run([sys.executable, "-m", "shoprank", "datasets", "import", "amazon-games", "--shop", shop_name,
                        "--home", home], check=True)
    return shop


def prepare(catalogue: Catalogue, events: list[Event], vectors: np.ndarray, *, users_sample: int = 0,
            seed: int = 0, popular_pool: int = POPULAR_POOL) -> Setup:
    """The genuine log (a seeded sample of ``users_sample`` users when > 0), targets and filler pool."""
    from shoprank.recommend.pipeline import log_of

    rng = np.random.default_rng(seed)
    if users_sample:
        users = sorted({e.user_id for e in events})
        keep = set(rng.choice(users, min(users_sample, len(users)), replace=False).tolist())
        events = [e for e in events if e.user_id in keep]
    log = log_of(catalogue, events)
    split = log.split()
    counts = split.train_counts
    pool = np.flatnonzero((counts >= TARGET_MIN) & (counts <= TARGET_MAX))
    if len(pool) < TARGET_COUNT:
        raise ValueError(f"only {len(pool)} items have {TARGET_MIN}-{TARGET_MAX} training occurrences")
    targets = np.sort(rng.choice(pool, TARGET_COUNT, replace=False))
    popular = np.argsort(-counts, kind="stable")
    popular = popular[(counts[popular] > 0) & ~np.isin(popular, targets)][:popular_pool]
    p = counts[popular] / counts[popular].sum()
    return Setup(catalogue, events, split, vectors, targets, np.array([len(s) for s in log.seqs.items]), popular, p,
                 max(e.timestamp for e in events))


def fake_users(setup: Setup, n_users: int, kind: str, seed: int) -> list[Event]:
    """``n_users`` new accounts created within the last ``BURST_S`` of the log. Shapes (profile length, number
    of pushed slots, positions, times, ids) depend on ``seed`` only; ``kind`` picks the items: ``attack`` puts
    1-3 targets (each sent twice) among popular fillers, ``control`` random items in the same slots."""
    if kind not in ("attack", "control"):
        raise ValueError(f"kind must be 'attack' or 'control', got {kind!r}")
    shape = np.random.default_rng(seed)
    items_rng = np.random.default_rng([seed, 1 if kind == "attack" else 2])
    n_items = len(setup.catalogue)
    events: list[Event] = []
    for u in range(n_users):
        user = f"new-{seed}-{u}"
        pushed = int(shape.integers(1, 4))
        length = min(max(int(shape.choice(setup.lengths)), 2 * pushed + 2), 2 * pushed + len(setup.popular))
        fillers = length - 2 * pushed
        slots = shape.integers(0, fillers - 1, size=pushed)  # pushed items sit before the last two events
        created = setup.end - BURST_S * shape.random()
        times = created + np.cumsum(shape.uniform(*GAP_S, size=length))
        if kind == "attack":
            push = items_rng.choice(setup.targets, pushed, replace=False)
            fill = items_rng.choice(setup.popular, fillers, replace=False, p=setup.popular_p)
        else:
            push = items_rng.choice(np.arange(1, n_items + 1), pushed, replace=False)
            fill = items_rng.choice(np.arange(1, n_items + 1), fillers, replace=False)
        sequence = list(fill)
        for slot, item in sorted(zip(slots, push, strict=True), key=lambda pair: -pair[0]):
            sequence[slot:slot] = [item, item]  # the pushed item, then the same event sent again
        for pos, item in enumerate(sequence):
            events.append(Event(event_id=f"{user}:{pos}", user_id=user, item_id=setup.catalogue.id_of(int(item)),
                                type="purchase", timestamp=float(times[pos])))
    return events


def log_key(events: list[Event]) -> str:
    digest = hashlib.sha256()
    for e in events:
        digest.update(f"{e.user_id}\x1f{e.item_id}\x1f{e.type}\x1f{e.timestamp!r}\x1e".encode())
    return digest.hexdigest()


def train_arm(setup: Setup, events: list[Event], defences: Defences | None, *, profile: str, threads: int,
              overrides: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The recommender trained in memory on ``events`` (after ``defences``), and its training summary."""
    from shoprank.recommend.pipeline import fit, log_of
    from shoprank.recommend.service import Recommender
    from shoprank.recommend.training import profile_config

    log = log_of(setup.catalogue, events, defences)
    split = log.split()
    config = profile_config(profile, len(setup.catalogue), setup.vectors.shape[1], threads=threads, **overrides)
    art, summary = fit(log, split, setup.vectors, config, progress=False)
    return Recommender(art), {"epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
                              "train_seconds": round(summary["seconds"], 1),
                              "ranker": {k: art.params["ranker"][k] for k in ("valid_ndcg_at_10", "best_iteration")}}


def evaluate_arm(rec: Any, setup: Setup) -> dict[str, float]:
    """NDCG@10, HR@10 and target HR@10 over the genuine test users (leave-one-out, full ranking)."""
    from shoprank.evaluation.metrics import loo_metrics
    from shoprank.recommend.evaluate import run_scorer
    split = setup.split
    hist = split.test_histories
    ranks, top = run_scorer(lambda h, rows: rec.score_batch(h, [hist.types[r] for r in rows]), hist,
                            split.test_targets)
    m = loo_metrics(ranks, 10)
    hit = np.isin(top, setup.targets).any(axis=1)
    return {"ndcg@10": m["ndcg@10"], "hr@10": m["hr@10"], "target_hr@10": float(hit.mean()),
            "test_users": len(ranks)}


def removed_by_origin(events: list[Event], defences: Defences, fake: set[str]) -> dict[str, dict[str, int]]:
    """Each defence alone, and all together: fake and genuine events it drops."""
    out = {}
    for name, config in [*((s, replace(defences, stages=(s,))) for s in STAGES), ("all", defences)]:
        kept, _ = apply_defences(events, config)
        kept_fake = sum(e.user_id in fake for e in kept)
        total_fake = sum(e.user_id in fake for e in events)
        out[name] = {"fake_dropped": total_fake - kept_fake,
                     "genuine_dropped": (len(events) - total_fake) - (len(kept) - kept_fake)}
    return out


def run_arms(setup: Setup, fractions: tuple[float, ...], *, profile: str = "demo", threads: int = 1,
             overrides: dict[str, Any] | None = None, defences: Defences | None = None,
             ablation: Defences | None = None, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Every arm {clean, control f, attack f for f in fractions} x defences {"off", "on"}, and with ``ablation``
    (other settings) the clean arm and the largest fraction's arms again as "ablation": one result row each."""
    defences = defences or Defences()
    overrides = overrides or {}
    genuine_users = len({e.user_id for e in setup.events})
    arms: list[tuple[str, float, list[Event]]] = [("clean", 0.0, [])]
    for f in fractions:
        n = max(1, round(f * genuine_users))
        for kind in ("control", "attack"):
            arms.append((kind, f, fake_users(setup, n, kind, seed=seed + int(round(f * 1000)))))
    plan: list[tuple[str, Defences | None, list[tuple[str, float, list[Event]]]]] = [("off", None, arms),
                                                                                     ("on", defences, arms)]
    if ablation is not None:
        plan.append(("ablation", ablation, [a for a in arms if a[1] in (0.0, max(fractions))]))
    rows: list[dict[str, Any]] = []
    trained: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for label, config, chosen in plan:
        for kind, f, fakes in chosen:
            name = f"{kind} {f:.0%}" if f else kind
            events = sorted(setup.events + fakes, key=lambda e: e.timestamp)
            started = time.perf_counter()
            kept, report = apply_defences(events, config) if config else (events, None)
            key = log_key(kept)
            row: dict[str, Any] = {"arm": name, "kind": kind, "fraction": f, "defences": label, "fake_users": len(
                {e.user_id for e in fakes}), "fake_events": len(fakes)}
            if report is not None and config is not None:
                fake_ids = {e.user_id for e in fakes}
                row["fake_events_kept"] = sum(e.user_id in fake_ids for e in kept)
                row["genuine_events_dropped"] = len(setup.events) - (len(kept) - row["fake_events_kept"])
                row["removed"] = report.to_dict()["removed"]
                if fakes and label == "on":
                    row["removed_alone"] = removed_by_origin(events, config, fake_ids)
            if key in trained:
                source, summary, metrics = trained[key]
                row.update(metrics, training=summary, same_log_as=source)
            else:
                rec, summary = train_arm(setup, kept, None, profile=profile, threads=threads, overrides=overrides)
                metrics = evaluate_arm(rec, setup)
                trained[key] = (f"{name}, defences {label}", summary, metrics)
                row.update(metrics, training=summary)
            row["seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            if progress:
                print(f"  {name:<12} defences {label:<8}: NDCG@10 {row['ndcg@10']:.4f} HR@10 {row['hr@10']:.4f} "
                      f"target HR@10 {row['target_hr@10']:.4f} ({row['seconds']:.0f} s"
                      + (f"; same log as {row['same_log_as']}" if "same_log_as" in row else "") + ")", flush=True)
    return rows


def uplift(rows: list[dict[str, Any]], fraction: float, label: str) -> float:
    """Target HR@10 of the attack arm minus the control arm, in points, with defences ``label``."""
    pick = {r["kind"]: r["target_hr@10"] for r in rows if r["fraction"] == fraction and r["defences"] == label}
    return 100.0 * (pick["attack"] - pick["control"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", default="games")
    parser.add_argument("--home", default="/tmp/shilling-home")
    parser.add_argument("--users-sample", type=int, default=0, help="use a seeded sample of this many genuine "
                        "users (0: all)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per arm (demo profile: 6)")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fractions", default="0.01,0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", default="dedup,rate_limit,item_velocity",
                        help="defences of an extra setting, run on the clean arm and the largest fraction's arms "
                        "(default: all but new-account dampening, so item-velocity detection is tested alone "
                        "against the burst); 'none' to skip")
    parser.add_argument("--popular-pool", type=int, default=POPULAR_POOL,
                        help=f"fillers are drawn from this many most popular items (default {POPULAR_POOL}; fewer: "
                        "a denser, stronger bandwagon attack)")
    parser.add_argument("--name", default="shilling", help="results go to bench/results/NAME.json")
    args = parser.parse_args()

    from shoprank.recommend.pipeline import item_vectors, log_of
    from shoprank.recommend.training import profile_settings

    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shop = load_shop(args.shop, args.home)
    with shop.store(create=False) as store:
        catalogue = Catalogue.from_products(store.iter_products())
        events = list(store.iter_events())
    vectors = item_vectors(shop, log_of(catalogue, events), "default", False,
                           int(profile_settings(args.profile)["text"]["max_length"]))
    setup = prepare(catalogue, events, vectors, users_sample=args.users_sample, seed=args.seed,
                    popular_pool=args.popular_pool)
    fractions = tuple(float(f) for f in args.fractions.split(","))
    overrides = {"epochs": args.epochs}
    defences = Defences()
    ablation = None if args.ablation == "none" else replace(defences, stages=tuple(args.ablation.split(",")))
    n_users = len({e.user_id for e in setup.events})
    print(f"shop '{shop.name}': {n_users:,} genuine users, {len(setup.events):,} events, {len(catalogue):,} items; "
          f"targets (training occurrences {TARGET_MIN}-{TARGET_MAX}): "
          f"{[catalogue.id_of(int(t)) for t in setup.targets]}")
    print(f"each arm: profile '{args.profile}' with epochs={args.epochs}, threads={args.threads}, seed {args.seed}",
          flush=True)
    rows = run_arms(setup, fractions, profile=args.profile, threads=args.threads, overrides=overrides,
                    defences=defences, ablation=ablation, seed=args.seed)
    if ablation is not None:
        print(f"ablation = defences {', '.join(ablation.stages)}")
    print(table(["arm", "defences", "fake users", "fake events kept", "genuine events dropped", "NDCG@10", "HR@10",
                 "target HR@10"],
                [[r["arm"], r["defences"], r["fake_users"],
                  r.get("fake_events_kept", r["fake_events"]), r.get("genuine_events_dropped", 0), r["ndcg@10"],
                  r["hr@10"], r["target_hr@10"]] for r in rows]))
    labels = ("off", "on") + (("ablation",) if ablation is not None else ())
    ups = {f"{f:.0%} defences {label}": uplift(rows, f, label) for f in fractions for label in labels
           if label != "ablation" or f == max(fractions)}
    clean = {r["defences"]: r for r in rows if r["kind"] == "clean"}
    cost = 100.0 * (clean["on"]["ndcg@10"] - clean["off"]["ndcg@10"])
    for r in rows:
        if "removed_alone" in r:
            print(f"{r['arm']}: fake / genuine events each defence drops on its own: " + ", ".join(
                f"{k} {v['fake_dropped']:,} / {v['genuine_dropped']:,}" for k, v in r["removed_alone"].items()))
    print("uplift of the targets' HR@10 (attack - control), points: "
          + ", ".join(f"{k} {v:+.2f}" for k, v in ups.items()))
    print(f"NDCG@10 cost of the defences on clean users: {cost:+.2f} points "
          f"({clean['off']['ndcg@10']:.4f} -> {clean['on']['ndcg@10']:.4f})")
    passed = None
    if 0.05 in fractions:
        passed = ups["5% defences on"] < PASS_POINTS
        print(f"[{'met' if passed else 'NOT met'}] uplift at 5% with defences on < {PASS_POINTS} points")
    path = write_json(args.name, {
        "shop": shop.name, "genuine_users": n_users, "events": len(setup.events), "items": len(catalogue),
        "targets": [catalogue.id_of(int(t)) for t in setup.targets], "profile": args.profile,
        "overrides": overrides, "popular_pool": args.popular_pool, "threads": args.threads, "seed": args.seed,
        "users_sample": args.users_sample,
        "defences": defences.to_dict(), "ablation": ablation.to_dict() if ablation else None, "rows": rows,
        "uplift_points": ups, "clean_ndcg_cost_points": cost,
        "pass_5pct_defences_on": passed, "command": " ".join(["python", "bench/shilling.py", *sys.argv[1:]]),
        "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"wrote {path} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
