"""Search trained from simulated shoppers' clicks alone, through a real server, against the judgment-trained stack.

    python -m bench.click_learning --home /tmp/clickhttp/home [--queries N] [--variants default,strong-bias,...]

Home Depot's judged grades are the hidden truth. One ``shoprank serve`` process (``bench.click_server``)
serves a shop per simulator and arm (each a copy of the catalogue and the judgments; the judgments only
split the queries and score the held-out ones) and ``hd-truth`` (the reference). Every round, simulated
shoppers (``shoprank.learning.simulate``: position-based, with a stated bias strength, click noise and a
share who click at all) search each training query twice over HTTP (``GET /shops/S/search``, a page of 20,
their own ``session_id``), the server logs each answer as an impression under its ``request_id``, and the
shoppers' clicks, carts and purchases are posted as events carrying that ``request_id``
(``POST /shops/S/events``). The arm then trains from what its store holds (impressions joined with the
attributed events) with the product's own code (``train_stack`` + ``publish_stack``, what
``shoprank train search --labels behaviour`` runs), publishes, and the server swaps the bundle in
(``POST /admin/reload``) to serve the next round:

* naive: click-through labels, every shown product taken as examined (``--correction none``),
* corrected: position-bias corrected labels, propensities from the log (``--correction harvest``).

Round 0 is the baseline bundle (``shoprank.baseline``: BM25 and the untuned encoder in reciprocal-rank fusion,
nothing trained). While shoppers search, the arm shops randomise their answers a little (the re-ranking
setting ``randomise``: each neighbouring pair of the first 20 places swaps with this probability); its cost
is measured on the baseline. Every round reports full-catalogue NDCG@10 and Recall@100 (grade >= 2.5) of
the served answers (``per_page=100``, randomisation off) on held-out judged queries (20% by query, never
searched by shoppers, never trained on) for the baseline, both arms and the judgment-trained reference. The
first simulator runs every round (first); the others (``--variants``) round 1 only unless ``--later-variants``.
The JSON is written after every round.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
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
TRUTH = "hd-truth"
STEPS = {"click": ["click"], "add_to_cart": ["click", "add_to_cart"],
         "purchase": ["click", "add_to_cart", "purchase"]}


@dataclass
class World:
    """What only the simulator and the scorer know: the shoppers' queries with their products' relevance (0-1),
    and the held-out queries with their gains."""

    train_queries: list[str]
    relevance: dict[str, dict[str, float]]
    test_queries: list[str]
    test_gains: dict[str, dict[str, float]]
    relevant_gain: float  # a held-out product counts for Recall@100 from this gain (grade >= 2.5 on Home Depot)
    reference_judgments: list[Any] = field(default_factory=list)  # what the reference trains on
    data: Any = None  # the truth shop's SearchData (products, split)


def world_from_store(store: Any, queries: int = 0, test_queries: int = 0, score_on: str = "test") -> World:
    """The truth from a shop's judgments: its training split's queries (a seeded sample of ``queries``) are
    the shoppers'; its test split's queries with a relevant product (a sample of ``test_queries``) are scored.
    ``score_on="valid"``: the training split's other queries (never searched by shoppers, not in the reference's
    judgments) are scored instead, and the test split is not read: for choosing settings."""
    from shoprank.data.splits import normalise_query
    from shoprank.search.data import load_search_data

    data = load_search_data(store, labels="judgments")
    relevance: dict[str, dict[str, float]] = {}
    for j in data.train:
        relevance.setdefault(normalise_query(j.query), {})[j.product_id] = (j.grade - data.lowest) / data.top_gain
    shoppers = sorted(relevance)
    if queries and queries < len(shoppers):
        shoppers = sorted(random.Random(0).sample(shoppers, queries))
    if score_on == "valid":
        searched = set(shoppers)
        test = data.query_set([j for j in data.train if normalise_query(j.query) not in searched])
    else:
        test = data.query_set(data.test)
    held = sorted(q for q, g in test.gains.items() if max(g.values()) > 0)
    if test_queries and test_queries < len(held):
        held = sorted(random.Random(1).sample(held, test_queries))
    keep = set(shoppers)
    return World(shoppers, {q: relevance[q] for q in shoppers}, held, {q: test.gains[q] for q in held},
                 0.75 * data.top_gain, [j for j in data.train if normalise_query(j.query) in keep], data)


@dataclass(frozen=True)
class Plan:
    variants: tuple[str, ...] = ("default",)
    rounds: int = 2
    later_variants: int = 1  # how many of the variants (the first ones) run rounds after 1
    sessions: int = 2  # shoppers per training query and round
    randomise: float = 0.5
    profile: str = "demo"
    fine_tune: bool = False
    threads: int = 2
    examined: float | None = None  # SearchTraining.examined of the arms (None: the product's default)

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
        if self.rounds < 1 or self.sessions < 1 or not 0.0 <= self.randomise <= 1.0:
            raise ValueError("rounds and sessions must be at least 1, randomise between 0 and 1")

    def training(self, arm: str | None) -> Any:
        """What ``shoprank train search`` is told: ``--labels behaviour --correction C`` for an arm, judgments for
        the reference; no cross-encoder (the online ranking does not use it), every fusion query."""
        from shoprank.search.publish import SearchTraining

        return SearchTraining(profile=self.profile, cross_encoder=False, fine_tune=self.fine_tune, fusion_queries=0,
                              labels="judgments" if arm is None else "behaviour",
                              correction=ARMS[arm] if arm else "harvest", threads=self.threads,
                              examined=self.examined if arm else None)


def seed_window_arg(text: str) -> int | None:
    """``--seed-window``: a whole number, or ``clock`` (None: the server's five-minute windows)."""
    if text == "clock":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'clock', got {text!r}") from None


def arm_shop(variant: str, arm: str) -> str:
    return f"hd-{variant}-{arm}"


# shops ------------------------------------------------------------------------------------------------
def make_shops(home: Path, plan: Plan, truth: Any, baseline_vectors: np.ndarray | None, cache: Path | None) -> None:
    """Every arm shop anew: a copy of the truth shop's store (catalogue, judgments, no events) with the baseline
    search bundle published and the catalogue's cached vectors linked into its cache."""
    import os
    import shutil

    from shoprank.baseline import publish_search
    from shoprank.shops import Shop

    def link_cache(shop: Any) -> None:
        if cache is not None and cache.is_dir():
            (shop.path / "cache").mkdir(exist_ok=True)
            for f in cache.glob("*.npy"):
                if not (shop.path / "cache" / f.name).exists():
                    os.link(f, shop.path / "cache" / f.name)

    link_cache(truth)
    first = None
    with truth.store(create=False) as store:
        snapshot = store.products_changed_since(0)
        for variant in plan.variants:
            for arm in ARMS:
                shop = Shop(arm_shop(variant, arm), home)
                if shop.path.exists():
                    shutil.rmtree(shop.path)
                shop.path.mkdir(parents=True)
                store.backup(shop.store_path)
                link_cache(shop)
                if first is None:
                    version, _ = publish_search(shop, baseline_vectors, (snapshot[0], snapshot[2]))
                    assert version is not None
                    first = shop
                else:  # the same bundle: copied, not rebuilt
                    shutil.copytree(first.models_path, shop.models_path)


class ClickBench:
    def __init__(self, home: Path, world: World, plan: Plan, server: Any,
                 say: Callable[[str], None] = print) -> None:
        from shoprank.learning.simulate import ShopperModel

        self.home, self.world, self.plan, self.server, self.say = home, world, plan, server, say
        self.models = {v: ShopperModel(**VARIANTS[v]) for v in plan.variants}
        self.timings: dict[str, float] = {}
        self.traffic: dict[str, dict[str, Any]] = {}
        self.training: dict[str, dict[str, Any]] = {}

    def lap(self, name: str, start: float) -> None:
        self.timings[name] = round(time.perf_counter() - start, 1)
        self.say(f"  [{name}: {self.timings[name]:.0f} s]")

    # serving and shoppers ---------------------------------------------------------------------------
    def shoppers(self, shop: str, variant: str, round_: int, seed: int) -> dict[str, Any]:
        """Every training query searched by ``sessions`` shoppers over HTTP; their events posted with the
        answers' request ids."""
        start = time.perf_counter()
        self.server.set_rerank(shop, randomise=self.plan.randomise)
        asks = [(q, f"r{round_}-{n}-{s}") for n, q in enumerate(self.world.train_queries)
                for s in range(self.plan.sessions)]
        answers = self.server.search_many(shop, asks, DEPTH)
        self.server.set_rerank(shop, randomise=0.0)
        rng = np.random.default_rng(seed)
        events, versions = [], set()
        now = time.time()
        for (q, session), answer in zip(asks, answers, strict=True):
            shown = [hit["id"] for hit in answer["hits"]]
            versions.add(answer["model_version"])
            outcomes = self.models[variant].session(shown, range(len(shown)), self.world.relevance[q], rng)
            for pid, outcome in zip(shown, outcomes, strict=True):
                for kind in STEPS[outcome] if outcome else ():
                    events.append({"event_id": f"{session}:{pid}:{kind}", "user_id": f"shopper-{session}",
                                   "item_id": pid, "type": kind, "timestamp": now, "session_id": session,
                                   "request_id": answer["request_id"]})
        posted = self.server.post_events(shop, events)
        flushed = self.server.impressions_flushed()
        self.lap(f"{shop} round {round_} shoppers ({len(asks)} searches, {len(events)} events)", start)
        return {"searches": len(asks), "served_by": sorted(versions), "events": posted,
                "impressions_dropped": flushed["dropped"]}

    def train(self, shop_name: str, arm: str | None, round_: int) -> tuple[str, dict[str, Any]]:
        """Train from the shop's store with the product's code, publish, swap in; (version, summary)."""
        from shoprank.search.publish import publish_stack, train_stack
        from shoprank.shops import Shop

        start = time.perf_counter()
        shop = Shop(shop_name, self.home)
        if arm is None:  # the reference: the judgments of the shoppers' queries (all of them or the same sample)
            trained = self._reference(shop)
        else:
            trained = train_stack(shop, self.plan.training(arm), progress=False, report=lambda s: None)
        version, _ = publish_stack(shop, trained.stack, trained.params)
        self.server.reload(shop_name, version)
        self.lap(f"train {shop_name} round {round_}", start)
        summary = trained.params["summary"]
        return version, {"version": version, "labels": trained.labels, "queries": summary["queries"],
                         "behaviour": summary.get("behaviour")}

    def _reference(self, shop: Any) -> Any:
        from shoprank.search.publish import TrainedSearch
        from shoprank.search.train import train_search

        training = self.plan.training(None)
        data = replace(self.world.data, train=self.world.reference_judgments)
        started = time.perf_counter()
        stack, summary = train_search(data, training.config("en"), progress=False, report=lambda s: None,
                                      cache_dir=shop.path / "cache")
        with shop.store(create=False) as store:
            catalog_version = store.catalog_version()
        params = {"profile": training.profile, "labels": "judgments", "catalog_version": catalog_version,
                  "summary": summary, "bench_reference": {"queries": len(self.world.train_queries)}}
        return TrainedSearch(stack, params, f"judgments of {len(self.world.train_queries)} queries",
                             time.perf_counter() - started)

    # evaluation -------------------------------------------------------------------------------------
    def evaluate(self, shop: str, name: str) -> dict[str, float]:
        """Full-catalogue NDCG@10 and Recall@100 of the served answers (100 per query) to the held-out queries."""
        from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k

        start = time.perf_counter()
        answers = self.server.search_many(shop, [(q, None) for q in self.world.test_queries], 100)
        ndcg, recall = [], []
        for q, answer in zip(self.world.test_queries, answers, strict=True):
            ranked = [hit["id"] for hit in answer["hits"]]
            gains = self.world.test_gains[q]
            ndcg.append(ndcg_at_k(ranked, gains, 10))
            relevant = {p for p, g in gains.items() if g >= self.world.relevant_gain}
            if relevant:
                recall.append(recall_at_k(ranked, relevant, 100))
        self.lap(f"evaluate {name}", start)
        return {"ndcg@10": round(float(np.mean(ndcg)), 4), "recall@100": round(float(np.mean(recall)), 4),
                "served_by": sorted({a["model_version"] for a in answers})[0]}

    # the rounds --------------------------------------------------------------------------------------
    def run(self, save: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        plan, first_shop = self.plan, arm_shop(self.plan.variants[0], "naive")
        baseline = self.evaluate(first_shop, "baseline")
        self.server.set_rerank(first_shop, randomise=plan.randomise)
        randomised = self.evaluate(first_shop, "baseline, randomised")
        self.server.set_rerank(first_shop, randomise=0.0)
        _, self.training["reference"] = self.train(TRUTH, None, 0)
        reference = self.evaluate(TRUTH, "reference")
        results: dict[str, Any] = {
            "randomisation": {"rate": plan.randomise, "ndcg@10_ranked": baseline["ndcg@10"],
                              "ndcg@10_served": randomised["ndcg@10"],
                              "cost": round(baseline["ndcg@10"] - randomised["ndcg@10"], 4)},
            "variants": {}}
        fixed = {"baseline": baseline, "reference": reference}
        rows = {v: [{"round": 0, **fixed, "naive": baseline, "corrected": baseline}] for v in plan.variants}
        for n, variant in enumerate(plan.variants):  # the first simulator's rounds first: they matter most
            for r in range(1, (plan.rounds if n < plan.later_variants else 1) + 1):
                started = time.perf_counter()
                row: dict[str, Any] = {"round": r, **fixed}
                for arm in ARMS:
                    shop = arm_shop(variant, arm)
                    self.traffic[f"{shop} round {r}"] = self.shoppers(shop, variant, r, 1000 * n + 10 * r)
                    _, self.training[f"{shop} round {r}"] = self.train(shop, arm, r)
                    row[arm] = self.evaluate(shop, f"{shop} round {r}")
                self.lap(f"{variant} round {r}", started)
                rows[variant].append(row)
                self.say(round_line(variant, row))
                results["variants"][variant] = {"simulator": asdict(self.models[variant]), "rounds": rows[variant]}
                save(results)  # after every round: a cut-short run keeps what it measured
        return results


def round_line(variant: str, row: dict[str, Any]) -> str:
    cells = ", ".join(f"{k} {v['ndcg@10']:.4f}/{v['recall@100']:.4f}" for k, v in row.items() if k != "round")
    return f"{variant} round {row['round']}: {cells}"


def tables(results: dict[str, Any], test_queries: int) -> str:
    names = ["baseline", "naive", "corrected", "reference"]
    labels = {"baseline": "baseline stack", "naive": "naive clicks", "corrected": "bias-corrected clicks",
              "reference": "judgment-trained"}
    out = []
    for variant, info in results["variants"].items():
        sim = info["simulator"]
        out.append(f"\n{variant}: bias {sim['bias']}, click noise {sim['noise']}, share who click {sim['active']}; "
                   f"{test_queries} held-out queries, full catalogue, NDCG@10 / Recall@100")
        rows = [[row["round"], *[f"{row[n]['ndcg@10']:.4f} / {row[n]['recall@100']:.4f}" for n in names]]
                for row in info["rounds"]]
        out.append(table(["round", *[labels[n] for n in names]], rows))
    cost = results["randomisation"]
    out.append(f"\nrandomisation {cost['rate']}: baseline NDCG@10 {cost['ndcg@10_ranked']:.4f} as ranked, "
               f"{cost['ndcg@10_served']:.4f} as served (cost {cost['cost']:.4f})")
    return "\n".join(out)


# the Home Depot run --------------------------------------------------------------------------------------
def ensure_truth(home: Path) -> Any:
    from shoprank.datasets import import_rows, load_dataset
    from shoprank.shops import Shop

    shop = Shop(TRUTH, home)
    if not shop.exists():
        with shop.store() as store:
            import_rows(store, load_dataset("homedepot"))
    return shop


def baseline_vectors(truth: Any, cache: Path) -> np.ndarray:
    """The baseline bundle's catalogue embeddings (the base encoder, as ``shoprank.baseline`` computes them),
    computed once into the bench's cache."""
    from shoprank.baseline.build import TEXT_LENGTH, _stack_config
    from shoprank.search.stack import load_encoder
    from shoprank.search.vectors import base_vectors

    with truth.store(create=False) as store:
        products, _, _ = store.products_changed_since(0)
    return base_vectors(products, load_encoder(_stack_config("en", True)), TEXT_LENGTH, cache, True)


def training_vectors(world: World, plan: Plan, cache: Path) -> None:
    """The untuned encoder's catalogue vectors every training starts from (the profile's text length), computed
    once into the bench's cache (each shop's cache links to it)."""
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.search.vectors import base_vectors

    length = plan.training(None).config("en").stack.doc_max_length
    base_vectors(world.data.products, BiEncoder.load(None, max_length=length), length, cache, True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="/tmp/clickhttp/home")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="demo")
    parser.add_argument("--queries", type=int, default=0, help="training queries shoppers search (0: all)")
    parser.add_argument("--test-queries", type=int, default=0, help="held-out judged queries scored (0: all)")
    parser.add_argument("--sessions", type=int, default=2, help="shoppers per training query and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--randomise", type=float, default=0.5,
                        help="probability that each pair of neighbouring served places swaps (0: off)")
    parser.add_argument("--variants", default="default", help=f"simulators: {', '.join(VARIANTS)}; the first "
                        "runs every round, then the others round 1")
    parser.add_argument("--later-variants", type=int, default=1, help="how many variants run the rounds after 1")
    parser.add_argument("--fine-tune", action="store_true",
                        help="fine-tune the query encoder too (default: LambdaMART only over the untuned encoder)")
    parser.add_argument("--concurrency", type=int, default=2, help="HTTP requests in flight")
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--examined", type=float, default=None,
                        help="the arms' SearchTraining.examined (default: the product's)")
    parser.add_argument("--score-on", choices=("test", "valid"), default="test",
                        help="valid: score other training-split queries, never the test split (to choose settings)")
    parser.add_argument("--seed-window", type=seed_window_arg, default=0,
                        help="the server's pinned randomisation window ($SHOPRANK_SEED_WINDOW), so that a run "
                        "repeats; 'clock': the five-minute windows a shop's server uses")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    try:
        plan = Plan(tuple(args.variants.split(",")), args.rounds, args.later_variants, args.sessions,
                    args.randomise, args.profile, args.fine_tune, args.threads, args.examined)
    except ValueError as exc:
        parser.error(str(exc))
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    cache = home / "click_learning_cache"
    truth = ensure_truth(home)
    with truth.store(create=False) as store:
        world = world_from_store(store, args.queries, args.test_queries, args.score_on)
    started = time.perf_counter()
    vectors = baseline_vectors(truth, cache)
    training_vectors(world, plan, cache)
    make_shops(home, plan, truth, vectors, cache)
    print(f"{len(world.train_queries)} training queries x {args.sessions} shoppers per round; "
          f"{len(world.test_queries)} held-out judged queries; profile {args.profile}"
          f"{'' if args.fine_tune else ' without query-encoder fine-tuning'}; served over HTTP by a real server "
          f"(randomisation {args.randomise}); shops ready in {time.perf_counter() - started:.0f} s", flush=True)
    name = "click_learning" + (f"_{args.tag}" if args.tag else "")
    from bench.click_server import ShopServer

    with ShopServer(home, concurrency=args.concurrency, seed_window=args.seed_window) as server:
        bench = ClickBench(home, world, plan, server)

        def save(results: dict[str, Any]) -> Path:
            return write_json(name, {"args": vars(args), "timings": bench.timings, "traffic": bench.traffic,
                                     "training": bench.training, "train_queries": len(world.train_queries),
                                     "test_queries": len(world.test_queries), **results})

        results = bench.run(save)
        path = save(results)
    print(tables(results, len(world.test_queries)))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
