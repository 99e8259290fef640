"""Search commands: ``train search``, ``evaluate search``, ``run search``, ``run rerank``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from shoprank.cli._ray import add_workers, ray_config
from shoprank.cli._rerank import add_diversity
from shoprank.cli._sweep import add_sweep, check_sweep_options, run_sweep
from shoprank.cli.main import CommandError, add_shop
from shoprank.training.profiles import PROFILE_NAMES


def _layers(text: str) -> tuple[int, ...]:
    from shoprank.encoders.distil import parse_layers  # loaded only when the option is given: help stays light

    return parse_layers(text)


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    train = groups["train"].add_parser("search", help="fine-tune the encoders, build the indices, fit the fusion")
    add_shop(train)
    train.add_argument("--profile", choices=PROFILE_NAMES, default="full",
                       help="demo: quick with 16-token product texts (shoprank demo); quick: a sample of queries "
                            "and one epoch (minutes); full: everything (default)")
    train.add_argument("--holdout", type=float, default=0.2,
                       help="share of queries held out for 'evaluate search' (default 0.2; 0 trains on all)")
    train.add_argument("--tune", type=int, default=0, metavar="N",
                       help="Optuna trials for LambdaMART's hyper-parameters on the validation queries")
    train.add_argument("--no-cross-encoder", action="store_true",
                       help="skip the cross-encoder (the online path does not use it; saves most CPU time)")
    train.add_argument("--no-fine-tuning", action="store_true",
                       help="keep the query encoder untuned (LambdaMART over its scores and the other features)")
    train.add_argument("--fusion-queries", type=int, default=None, metavar="N",
                       help="training queries sampled for the LambdaMART rankers (0: every fusion query; "
                            "default: the profile's)")
    train.add_argument("--doc-tower", choices=["base", "distilled", "tuned"], default="base",
                       help="what embeds the products: the base encoder (default), a shallower tower distilled "
                            "from it on the shop's product texts (about 4x faster to embed on 2 cores; distilling "
                            "takes minutes, so it pays for large catalogues; docs/benchmarks.md has its cost), or "
                            "tuned: one tower fine-tuned for queries and products, the catalogue embedded again")
    train.add_argument("--tower-distill", type=float, default=None, metavar="W",
                       help="with --doc-tower tuned: weight of a margin-MSE term that distils the cross-encoder's "
                            "scores into the tower (default 0: contrastive loss alone)")
    train.add_argument("--distil-layers", type=_layers, default=None, metavar="I,J",
                       help="the base encoder's layers the distilled tower keeps (default 0,5: the first and last)")
    train.add_argument("--labels", choices=["auto", "judgments", "behaviour", "both"], default="auto",
                       help="what to learn from: judged queries, the behaviour log (clicks, carts and purchases on "
                            "served lists, corrected for position bias) or both; auto (default): whatever the shop has")
    train.add_argument("--correction", choices=["harvest", "em", "none"], default="harvest",
                       help="position-bias propensities from the log: intervention harvesting (default), an "
                            "EM-fitted position-based model, or none (naive click training)")
    cross = train.add_argument_group("cross-encoder settings (override the profile's)")
    cross.add_argument("--cross-pairs", type=int, default=None, metavar="N",
                       help="labelled (query, product) pairs sampled for it (0: all)")
    cross.add_argument("--cross-epochs", type=int, default=None)
    cross.add_argument("--cross-lr", type=float, default=None, help="peak learning rate")
    cross.add_argument("--cross-freeze", choices=["none", "lower", "all"], default=None,
                       help="none: fine-tune every layer; lower: freeze the lower half; all: the head only")
    cross.add_argument("--cross-eval-every", type=int, default=None, metavar="STEPS",
                       help="validate (NDCG@10) every so many steps for early stopping (0: once an epoch)")
    _add_common(train)
    add_workers(train, "embed the catalogue and fine-tune both encoders")
    train.set_defaults(handler=cmd_train)

    evaluate = groups["evaluate"].add_parser("search", help="all methods on the held-out queries, one table")
    add_shop(evaluate)
    evaluate.add_argument("--folds", type=int, default=0,
                          help="k-fold by query: train a stack per fold (not published) and test every query once")
    evaluate.add_argument("--profile", choices=["quick", "full"], default="quick",
                          help="training profile of each fold with --folds (default quick)")
    evaluate.add_argument("--tune", type=int, default=0, metavar="N", help="with --folds: Optuna trials per fold")
    evaluate.add_argument("--no-cross-encoder", action="store_true",
                          help="with --folds: train no cross-encoder per fold (saves most of the CPU time)")
    evaluate.add_argument("--no-fine-tuning", action="store_true",
                          help="with --folds: no query-encoder fine-tuning per fold (the fusion is still trained)")
    evaluate.add_argument("--models-from", default=None, metavar="SHOP",
                          help="score this shop's queries with another shop's trained models (transfer)")
    evaluate.add_argument("--no-full", action="store_true", help="skip the full-catalogue protocol")
    evaluate.add_argument("--max-queries", type=int, default=None, help="evaluate a sample of the test queries")
    evaluate.add_argument("--json", default=None, metavar="FILE", help="write the results here too")
    _add_common(evaluate)
    add_sweep(evaluate, "search")
    evaluate.set_defaults(handler=cmd_evaluate)

    run = groups["run"].add_parser("search", help="search the catalogue for each query of a CSV (qid,query)")
    add_shop(run)
    run.add_argument("--queries", required=True, metavar="FILE", help="CSV with header qid,query")
    run.add_argument("--out", required=True, metavar="RUN", help="TREC run file to write")
    run.add_argument("--top", type=int, default=100)
    run.add_argument("--tag", default="shoprank")
    run.add_argument("--cross-encoder", action="store_true",
                     help="add the cross-encoder on the head of each list (not what the server answers; by default "
                          "the run lists exactly what the HTTP API answers)")
    add_diversity(run)
    _add_common(run)
    run.set_defaults(handler=cmd_run_search)

    rerank = groups["run"].add_parser("rerank", help="order each query's given products (CSV qid,query,product_id)")
    add_shop(rerank)
    rerank.add_argument("--pairs", required=True, metavar="FILE", help="CSV with header qid,query,product_id")
    rerank.add_argument("--out", required=True, metavar="RUN", help="TREC run file to write")
    rerank.add_argument("--tag", default="shoprank")
    add_diversity(rerank)
    _add_common(rerank)
    rerank.set_defaults(handler=cmd_run_rerank)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch and LightGBM (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _setup(args: argparse.Namespace) -> Any:
    import torch

    from shoprank.shops import Shop

    torch.set_num_threads(max(1, args.threads))
    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop {args.shop!r} does not exist in {shop.home}")
    return shop


def cmd_train(args: argparse.Namespace) -> int:
    from shoprank.search.publish import SearchDataError, SearchTraining, train_and_publish

    shop = _setup(args)
    try:
        training = SearchTraining(
            profile=args.profile, holdout=args.holdout, tune=args.tune, cross_encoder=not args.no_cross_encoder,
            fine_tune=not args.no_fine_tuning, fusion_queries=args.fusion_queries, labels=args.labels,
            correction=args.correction, doc_tower=args.doc_tower, distil_layers=args.distil_layers,
            tower_distill=args.tower_distill,
            cross_pairs=args.cross_pairs, cross_epochs=args.cross_epochs, cross_lr=args.cross_lr,
            cross_freeze=args.cross_freeze, cross_eval_every=args.cross_eval_every, threads=args.threads)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    from shoprank.cluster import RayJobError

    ray = ray_config(args)
    if ray is not None:
        print(f"  on Ray: {ray.workers} workers on {ray.where}")
    try:
        published = train_and_publish(shop, training, progress=not args.quiet, announce=print, ray=ray)
    except (SearchDataError, RayJobError) as exc:
        raise CommandError(str(exc)) from None
    summary = published.summary
    print(f"\nsearch models for '{shop.name}' published as version {published.version}")
    print(f"  profile {args.profile}; queries {summary['queries']}")
    print(f"  query tower for serving: {published.query_tower}")
    if summary.get("ray"):
        print(f"  ran on Ray with {summary['ray']['workers']} workers ({summary['ray']['cluster']} cluster)")
    for key in ("query_encoder", "cross_encoder"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    for name, info in summary.get("fusion", {}).items():
        print(f"  fusion '{name}': {info['trees']} trees, top features {', '.join(info['top_features'][:4])}")
    held = summary.get("held_out", {})
    if "snips" in held:
        est = held["snips"]
        print(f"  held-out clicks per served list ({est['queries']} queries): logged {est['logged']:.3f}, "
              f"new ranking {est['snips']:.3f} (SNIPS; IPS {est['ips']:.3f}, coverage {est['coverage']:.0%})")
    if "ndcg@10" in held:
        print(f"  held-out full-catalogue NDCG@10 (online ranking, {held['ndcg_queries']} judged queries): "
              f"{held['ndcg@10']:.4f}")
    print(f"  TensorBoard: tensorboard --logdir {shop.path / 'logs'}")
    print(f"  time taken: {published.seconds / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in summary['timings'].items())})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from shoprank.search.evaluate import format_table, summarise
    from shoprank.search.run_eval import evaluate_bundle, evaluate_folds, evaluate_transfer

    check_sweep_options(args)
    shop = _setup(args)
    if args.diversity_sweep:
        clash = [name for name, on in (("--folds", args.folds), ("--models-from", args.models_from),
                                       ("--max-queries", args.max_queries is not None)) if on]
        if clash:
            raise CommandError(f"{', '.join(clash)} do not apply with --diversity-sweep (use --sample)")
        return run_sweep(args, shop, "search")
    start = time.perf_counter()
    progress = not args.quiet
    if args.folds:
        results = evaluate_folds(shop, args.folds, args.profile, progress=progress, tune=args.tune,
                                 threads=args.threads, cross=not args.no_cross_encoder,
                                 fine_tune=not args.no_fine_tuning)
    elif args.models_from:
        from shoprank.shops import Shop

        results = evaluate_transfer(shop, Shop(args.models_from, args.home), progress=progress,
                                    max_queries=args.max_queries)
    else:
        results = evaluate_bundle(shop, full=not args.no_full, progress=progress, max_queries=args.max_queries)
    print()
    print(format_table(results))
    print(f"\n(evaluated in {(time.perf_counter() - start) / 60:.1f} min)")
    if args.json:
        Path(args.json).write_text(json.dumps(summarise(results), indent=2))
    return 0


def _read_csv(path: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"{path}: the header must name {', '.join(columns)}; missing {', '.join(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if any(not (row.get(c) or "").strip() for c in columns):
                raise CommandError(f"{path} line {line}: empty {', '.join(c for c in columns if not row.get(c))}")
            rows.append({c: row[c].strip() for c in columns})
    return rows


def _load_engine(shop: Any, use_cross: bool) -> Any:
    from shoprank.bundles import BundleError
    from shoprank.search import SearchEngine

    try:
        return SearchEngine.load(shop, use_cross_encoder=use_cross)
    except BundleError as exc:
        raise CommandError(str(exc)) from None


def _progress(done: int, total: int, start: float, unit: str, quiet: bool) -> None:
    if quiet:
        return
    rate = done / max(time.perf_counter() - start, 1e-9)
    print(f"\r  {done:,}/{total:,} {unit} ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)


def cmd_run_search(args: argparse.Namespace) -> int:
    from shoprank.cascade import Request, pairs
    from shoprank.cli._rerank import batch_cascade, describe
    from shoprank.evaluation.trec import write_run

    shop = _setup(args)
    if args.top < 1:
        raise CommandError("--top must be at least 1")
    queries = _read_csv(args.queries, ("qid", "query"))
    if args.diversity is not None and not 0.0 <= args.diversity <= 1.0:
        raise CommandError(f"--diversity must lie between 0 (off) and 1, got {args.diversity}")
    cascade = batch_cascade(shop, ("search",), use_cross_encoder=args.cross_encoder)
    engine = cascade.search
    page_size = cascade.reranking.reranker.config.page_size
    print(f"searching {len(queries):,} queries over {engine.stack.catalog.n_live:,} products "
          f"with search models {engine.version}; {describe(cascade.reranking.reranker, args.diversity)}")
    start = time.perf_counter()
    run: dict[str, list[tuple[str, float]]] = {}
    for n, row in enumerate(queries, start=1):
        if row["qid"] in run:
            raise CommandError(f"{args.queries}: qid {row['qid']!r} appears twice")
        ask = Request("search", row["query"], per_page=page_size, limit=args.top, diversity=args.diversity)
        run[row["qid"]] = pairs(cascade.run_one(ask))
        if n % 20 == 0 or n == len(queries):
            _progress(n, len(queries), start, "queries", args.quiet)
    write_run(args.out, run, tag=args.tag)
    took = time.perf_counter() - start
    print(f"\nwrote {sum(len(v) for v in run.values()):,} lines for {len(run):,} queries to {args.out} "
          f"in {took:.1f} s ({len(run) / max(took, 1e-9):.1f} queries/s)")
    return 0


def cmd_run_rerank(args: argparse.Namespace) -> int:
    from shoprank.cli._rerank import batch_reranker, describe, rerank_pairs
    from shoprank.evaluation.trec import write_run
    from shoprank.rerank.context import search_context

    shop = _setup(args)
    pairs = _read_csv(args.pairs, ("qid", "query", "product_id"))
    groups: dict[str, tuple[str, list[str]]] = {}
    for row in pairs:
        query, ids = groups.setdefault(row["qid"], (row["query"], []))
        if query != row["query"]:
            raise CommandError(f"{args.pairs}: qid {row['qid']!r} has two different queries")
        ids.append(row["product_id"])
    engine = _load_engine(shop, True)
    reranker = batch_reranker(shop, args.diversity)
    print(f"re-ranking {len(pairs):,} pairs of {len(groups):,} queries with search models {engine.version}; "
          f"{describe(reranker)}")
    start = time.perf_counter()
    run: dict[str, list[tuple[str, float]]] = {}
    unknown = 0
    for n, (qid, (query, ids)) in enumerate(groups.items(), start=1):
        ranked = engine.rerank(query, ids)
        products, vectors = search_context(engine.stack, [pid for pid, _ in ranked])
        run[qid] = rerank_pairs(reranker, ranked, products, vectors, query, None)
        unknown += sum(1 for pid in set(ids) if pid not in engine.stack.catalog.row_of)
        if n % 20 == 0 or n == len(groups):
            _progress(n, len(groups), start, "queries", args.quiet)
    write_run(args.out, run, tag=args.tag)
    took = time.perf_counter() - start
    print(f"\nwrote {sum(len(v) for v in run.values()):,} lines for {len(run):,} queries to {args.out} "
          f"in {took:.1f} s ({len(pairs) / max(took, 1e-9):.0f} pairs/s)")
    if unknown:
        print(f"  {unknown:,} products are not in the catalogue; they are ranked last")
    return 0
