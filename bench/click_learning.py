"""Search trained from simulated shoppers' clicks alone, against the judgment-trained stack.

    python -m bench.click_learning --home /tmp/clicks/home [--queries N] [--variants default,bias2,...]

Home Depot's judged grades are the hidden truth. Simulated shoppers (``shoprank.learning.simulate``, a
position-based model with a stated bias strength, click noise and a share who click at all) search every
training query twice per round and click, add to cart and buy by grade; what they did lands in the shop's
store as events and in the click log as served lists. Round 0 is served by the baseline stack (BM25 and the
untuned encoder, reciprocal-rank fusion, no training); after each round each arm trains on everything
logged so far and serves the next round with its own model:

* naive: click-through labels, every shown product taken as examined (``--correction none``),
* corrected: inverse-propensity labels with propensities estimated from the log (intervention harvesting).

Every round reports full-catalogue NDCG@10 and Recall@100 (grade >= 2.5) of the online ranking on the
held-out judged queries (20% by query, never served, never trained on) for the baseline, both arms and the
judgment-trained stack (the reference), all trained with the same short profile. Served lists carry a small
randomisation (``--randomise``: each pair of neighbouring places in the first 20 swaps with this
probability), whose NDCG cost is measured on the baseline. Other simulators (``--variants``) run round 1.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json
from shoprank.training.profiles import PROFILE_NAMES

VARIANTS: dict[str, dict[str, float]] = {
    "default": {"bias": 1.0, "noise": 0.1, "active": 0.6},
    "strong-bias": {"bias": 2.0, "noise": 0.1, "active": 0.6},
    "weak-bias": {"bias": 0.5, "noise": 0.1, "active": 0.6},
    "noisy": {"bias": 1.0, "noise": 0.25, "active": 0.6},
    "few-clickers": {"bias": 1.0, "noise": 0.1, "active": 0.25},
}
ARMS = {"naive": "none", "corrected": "harvest"}
DEPTH = 20  # places a shopper may look at: one page of 20


def ensure_shop(home: Path, name: str) -> Any:
    from shoprank.datasets import import_rows, load_dataset
    from shoprank.shops import Shop

    shop = Shop(name, home)
    if not shop.exists():
        with shop.store() as store:
            import_rows(store, load_dataset("homedepot"))
    return shop


def train_config(profile: str, fine_tune: bool = True) -> Any:
    from shoprank.search.train import profile_config

    config = profile_config(profile)
    config.cross = None  # the online ranking does not use it
    if not fine_tune:
        config.biencoder = None  # LambdaMART only, over the untuned encoder
    config.max_fusion_queries = None  # every fusion query
    config.fusion.threads = 2
    return config


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from shoprank.search.data import load_search_data

        self.args = args
        self.home = Path(args.home)
        self.cache = self.home / "click_learning_cache"
        self.truth_shop = ensure_shop(self.home, "hd-truth")
        with self.truth_shop.store(create=False) as store:
            self.data = load_search_data(store, labels="judgments")
        self.products = self.data.products
        lowest, top = self.data.lowest, self.data.top_gain
        self.relevance: dict[str, dict[str, float]] = {}
        from shoprank.data.splits import normalise_query

        for j in self.data.train:
            self.relevance.setdefault(normalise_query(j.query), {})[j.product_id] = (j.grade - lowest) / top
        queries = sorted(self.relevance)
        if args.queries and args.queries < len(queries):
            queries = sorted(random.Random(0).sample(queries, args.queries))
        self.train_queries = queries
        test = self.data.query_set(self.data.test)
        held = [q for q, g in test.gains.items() if max(g.values()) > 0]
        if args.test_queries and args.test_queries < len(held):
            held = sorted(random.Random(1).sample(held, args.test_queries))
        self.test = test
        self.test_queries = held
        self.relevant_gain = 0.75 * top
        self.timings: dict[str, float] = {}
        self.last_ranked: dict[str, list[str]] = {}

    def lap(self, name: str, start: float) -> None:
        self.timings[name] = round(time.perf_counter() - start, 1)
        print(f"  [{name}: {self.timings[name]:.0f} s]", flush=True)

    # stacks ---------------------------------------------------------------------------------------
    def baseline(self) -> Any:
        from shoprank.encoders.biencoder import BiEncoder
        from shoprank.search.stack import SearchStack
        from shoprank.search.vectors import base_vectors

        config = train_config(self.args.profile).stack
        encoder = BiEncoder.load(None, max_length=config.doc_max_length)
        vectors = base_vectors(self.products, encoder, config.doc_max_length, self.cache, True)
        return SearchStack.build(self.products, encoder, config, vectors=vectors)

    def train(self, data: Any, name: str) -> tuple[Any, dict[str, Any]]:
        from shoprank.search.train import train_search

        start = time.perf_counter()
        print(f"training {name} ({data.labels} labels)", flush=True)
        stack, summary = train_search(data, train_config(self.args.profile, self.args.fine_tune), progress=False,
                                      report=lambda s: None, cache_dir=self.cache)
        self.lap(f"train {name}", start)
        return stack, summary

    def reference(self) -> tuple[Any, dict[str, Any]]:
        """Trained on the judgments of the queries the shoppers search (all of them or the same sample)."""
        from dataclasses import replace

        from shoprank.data.splits import normalise_query

        keep = set(self.train_queries)
        data = replace(self.data, train=[j for j in self.data.train if normalise_query(j.query) in keep])
        return self.train(data, "judgment-trained reference")

    # serving and shoppers ---------------------------------------------------------------------------
    def serve(self, stack: Any, queries: list[str], name: str) -> dict[str, list[str]]:
        from shoprank.search.held_out import ranked_ids

        start = time.perf_counter()
        lists = ranked_ids(stack, queries, DEPTH)
        self.lap(f"serve {name} ({len(queries)} queries)", start)
        return lists

    def shoppers(self, lists: dict[str, list[str]], model: Any, version: str, seed: int) -> tuple[Any, list[Any]]:
        """Two (``--sessions``) shoppers per query, each shown the list with the randomisation applied."""
        from shoprank.data.records import Event
        from shoprank.learning import ClickLog, ServedList
        from shoprank.learning.randomise import swap_adjacent

        rng = np.random.default_rng(seed)
        served, events = [], []
        now = time.time() - 86400
        for q in self.train_queries:
            for s in range(self.args.sessions):
                key = f"{version}:{q}:{s}"
                shown = swap_adjacent(lists[q], self.args.randomise, rng, DEPTH)
                outcomes = model.session(shown, range(len(shown)), self.relevance[q], rng)
                served.append(ServedList(key, q, tuple(shown), tuple(range(len(shown))), tuple(outcomes), version))
                for place, (pid, outcome) in enumerate(zip(shown, outcomes, strict=True)):
                    if outcome is None:
                        continue
                    steps = {"click": ["click"], "add_to_cart": ["click", "add_to_cart"],
                             "purchase": ["click", "add_to_cart", "purchase"]}[outcome]
                    for kind in steps:
                        events.append(Event(f"{key}:{pid}:{kind}", f"shopper-{key}", pid, kind, now + len(events),
                                            query=q, position=place, session_id=key))
        return ClickLog(served), events

    # evaluation -------------------------------------------------------------------------------------
    def evaluate(self, stack: Any, name: str) -> dict[str, float]:
        from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k
        from shoprank.search.held_out import ranked_ids

        start = time.perf_counter()
        ranked = self.last_ranked = ranked_ids(stack, self.test_queries, 100)
        ndcg, recall = [], []
        for q in self.test_queries:
            gains = self.test.gains[q]
            ndcg.append(ndcg_at_k(ranked[q], gains, 10))
            relevant = {p for p, g in gains.items() if g >= self.relevant_gain}
            if relevant:
                recall.append(recall_at_k(ranked[q], relevant, 100))
        self.lap(f"evaluate {name}", start)
        return {"ndcg@10": round(float(np.mean(ndcg)), 4), "recall@100": round(float(np.mean(recall)), 4)}

    def randomisation_cost(self) -> dict[str, float]:
        """NDCG@10 of the held-out lists last evaluated, as served (randomised) against as ranked."""
        from shoprank.evaluation.metrics import ndcg_at_k
        from shoprank.learning.randomise import swap_adjacent

        rng = np.random.default_rng(7)
        ranked = {q: ids[:DEPTH] for q, ids in self.last_ranked.items()}
        plain = [ndcg_at_k(ranked[q], self.test.gains[q], 10) for q in self.test_queries]
        shuffled = [float(np.mean([ndcg_at_k(swap_adjacent(ranked[q], self.args.randomise, rng, DEPTH),
                                             self.test.gains[q], 10) for _ in range(5)]))
                    for q in self.test_queries]
        return {"ndcg@10_ranked": round(float(np.mean(plain)), 4), "ndcg@10_served": round(float(np.mean(shuffled)), 4),
                "cost": round(float(np.mean(plain) - np.mean(shuffled)), 4)}

    def arm_data(self, arm: str, variant: str, log: Any, events: list[Any]) -> Any:
        """The arm's shop (catalogue and judgments, the judgments used for held-out scoring only) with this
        round's events appended, and its training data from the behaviour log alone."""
        from shoprank.learning import BehaviourConfig
        from shoprank.search.data import load_search_data

        shop = ensure_shop(self.home, f"hd-{variant}-{arm}")
        with shop.store(create=False) as store:
            store.append_events(events)
            return load_search_data(store, labels="behaviour", log=log,
                                    behaviour=BehaviourConfig(correction=ARMS[arm]))


def fresh_home(home: Path, variants: list[str]) -> None:
    """Arm shops start without events on every run (their events are this run's shoppers)."""
    import shutil

    from shoprank.shops import Shop

    for variant in variants:
        for arm in ARMS:
            shop = Shop(f"hd-{variant}-{arm}", home)
            if shop.exists():
                shutil.rmtree(shop.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="/tmp/clicks/home")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="demo")
    parser.add_argument("--queries", type=int, default=0, help="training queries shoppers search (0: all)")
    parser.add_argument("--test-queries", type=int, default=0, help="held-out judged queries scored (0: all)")
    parser.add_argument("--sessions", type=int, default=2, help="shoppers per training query and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--randomise", type=float, default=0.5,
                        help="probability that each pair of neighbouring served places swaps (0: off)")
    parser.add_argument("--variants", default="default", help=f"simulators: {', '.join(VARIANTS)}; the first "
                        "runs every round, the others round 1 (all rounds 1 first)")
    parser.add_argument("--fine-tune", action="store_true",
                        help="fine-tune the query encoder too (default: LambdaMART only over the untuned encoder)")
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from shoprank.learning.simulate import ShopperModel

    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
    home = Path(args.home)
    fresh_home(home, variants)
    bench = Bench(args)
    print(f"{len(bench.train_queries)} training queries x {args.sessions} shoppers per round; "
          f"{len(bench.test_queries)} held-out judged queries; profile {args.profile}"
          f"{'' if args.fine_tune else ' without query-encoder fine-tuning'}; serving in-process "
          f"(randomisation {args.randomise})", flush=True)
    baseline = bench.baseline()
    scores: dict[str, dict[str, float]] = {"baseline": bench.evaluate(baseline, "baseline")}
    cost = bench.randomisation_cost()
    reference, ref_summary = bench.reference()
    scores["reference"] = bench.evaluate(reference, "reference")
    round0 = bench.serve(baseline, bench.train_queries, "baseline")
    results: dict[str, Any] = {"randomisation": cost, "variants": {},
                               "reference_training": {"queries": ref_summary["queries"]}}
    first = {"round": 0, "baseline": scores["baseline"], "reference": scores["reference"],
             "naive": scores["baseline"], "corrected": scores["baseline"]}
    state = {v: {"model": ShopperModel(**VARIANTS[v]), "rounds": [first], "training": {},
                 "logs": dict.fromkeys(ARMS), "served": dict.fromkeys(ARMS, round0), "stacks": {}} for v in variants}
    path = save(results, bench, args)
    for r in range(1, args.rounds + 1):  # round 1 of every simulator before round 2 of the first
        for n, variant in enumerate(variants[:1] if r > 1 else variants):
            st = state[variant]
            row: dict[str, Any] = {"round": r, "baseline": scores["baseline"], "reference": scores["reference"]}
            for arm in ARMS:
                if r > 1:  # the arm's own model of the last round serves this one
                    st["served"][arm] = bench.serve(st["stacks"][arm], bench.train_queries, f"{arm} round {r - 1}")
                seed = 1000 * n + 10 * r  # both arms' shoppers draw alike in round 1 (same lists, same seed)
                log, events = bench.shoppers(st["served"][arm], st["model"], f"{arm}-r{r - 1}", seed)
                before = st["logs"][arm]
                st["logs"][arm] = log if before is None else type(log)(before.lists + log.lists)
                data = bench.arm_data(arm, variant, st["logs"][arm], events)
                stack, summary = bench.train(data, f"{variant} {arm} round {r}")
                row[arm] = bench.evaluate(stack, f"{variant} {arm} round {r}")
                st["training"][f"{arm} round {r}"] = {"behaviour": summary.get("behaviour"),
                                                      "queries": summary["queries"]}
                if r < args.rounds and n == 0:
                    st["stacks"][arm] = stack
            st["rounds"].append(row)
            print_round(variant, row)
            results["variants"][variant] = {"simulator": asdict(st["model"]), "rounds": st["rounds"],
                                            "training": st["training"]}
            path = save(results, bench, args)  # after every round: a cut-short run keeps what it measured
    print_all(results, bench, args)
    print(f"\nwrote {path}")
    return 0


def save(results: dict[str, Any], bench: Bench, args: argparse.Namespace) -> Path:
    name = "click_learning" + (f"_{args.tag}" if args.tag else "")
    return write_json(name, {"args": vars(args), "timings": bench.timings, "train_queries": len(bench.train_queries),
                             "test_queries": len(bench.test_queries), **results})


def print_round(variant: str, row: dict[str, Any]) -> None:
    cells = ", ".join(f"{k} {v['ndcg@10']:.4f}/{v['recall@100']:.4f}" for k, v in row.items() if k != "round")
    print(f"{variant} round {row['round']}: {cells}", flush=True)


def print_all(results: dict[str, Any], bench: Bench, args: argparse.Namespace) -> None:
    names = ["baseline", "naive", "corrected", "reference"]
    labels = {"baseline": "baseline stack", "naive": "naive clicks", "corrected": "bias-corrected clicks",
              "reference": "judgment-trained"}
    for variant, info in results["variants"].items():
        sim = info["simulator"]
        print(f"\n{variant}: bias {sim['bias']}, click noise {sim['noise']}, share who click {sim['active']}; "
              f"{len(bench.test_queries)} held-out queries, full catalogue, NDCG@10 / Recall@100")
        rows = []
        for row in info["rounds"]:
            rows.append([row["round"], *[f"{row[n]['ndcg@10']:.4f} / {row[n]['recall@100']:.4f}" for n in names]])
        print(table(["round", *[labels[n] for n in names]], rows))
    cost = results["randomisation"]
    print(f"\nrandomisation {args.randomise}: baseline NDCG@10 {cost['ndcg@10_ranked']:.4f} as ranked, "
          f"{cost['ndcg@10_served']:.4f} as served (cost {cost['cost']:.4f})")


if __name__ == "__main__":
    raise SystemExit(main())
