"""Recommendation commands: ``train recommend``, ``evaluate recommend``, ``run recommend``."""

from __future__ import annotations

import argparse
import json
import time

from shoprank.cli._ray import add_workers, ray_config
from shoprank.cli._rerank import add_diversity
from shoprank.cli._sweep import add_sweep, check_sweep_options, run_sweep
from shoprank.cli.main import CommandError, add_shop, existing_shop
from shoprank.training.profiles import PROFILE_NAMES


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    train = groups["train"].add_parser("recommend", help="train the sequence recommender and item-to-item tables")
    add_shop(train)
    train.add_argument("--profile", default="quick", choices=PROFILE_NAMES,
                       help="demo: 6 epochs, item texts cut at 32 tokens (shoprank demo); quick: up to 30 epochs "
                       "(early stopping), 512 sampled negatives; full: up to 15 epochs, 1024 negatives (default quick)")
    train.add_argument("--tune", type=int, default=0, metavar="N", help="an Optuna search of N trials first")
    train.add_argument("--epochs", type=int, default=None, help="override the profile's maximum epochs")
    train.add_argument("--encoder", default="default",
                       help="text encoder for item vectors: a local model folder, 'default' (MiniLM) or 'hash:DIM'")
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads for PyTorch (default 1: on a shared machine more threads run slower)")
    train.add_argument("--log-dir", default=None, help="TensorBoard folder (default SHOP/runs/recommend-TIME)")
    train.add_argument("--blend-only", action="store_true",
                       help="keep the latest sequence model; rebuild item-to-item tables, fit the ranking "
                            "stage again (minutes)")
    train.add_argument("--no-defences", action="store_true",
                       help="learn from every event: no dedup, per-user rate limit, new-account dampening or "
                       "item-velocity burst detection (see docs/recommend.md, 'Defences against shilling')")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    add_workers(train, "embed the catalogue and train the sequence model")
    train.set_defaults(handler=cmd_train)

    evaluate = groups["evaluate"].add_parser(
        "recommend", help="leave-one-out full ranking: the trained model beside random, popular, kNN, ALS, BPR...")
    add_shop(evaluate)
    evaluate.add_argument("--models", default="all",
                          help="comma list of: sasrec, random, popular, itemknn, als, bpr, text (default all)")
    evaluate.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON here")
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument("--test-users", type=int, default=0, metavar="N",
                          help="test N test users drawn with seed 0 (default all), every model on the same ones")
    evaluate.add_argument("--by-history", action="store_true",
                          help="also the served model's figures by history length, histories cut to 2, 1 and 0 "
                               "events (new users) on a sample of test users")
    add_sweep(evaluate, "recommend")
    evaluate.set_defaults(handler=cmd_evaluate)

    run = groups["run"].add_parser("recommend", help="top-N for a file of user ids (one a line) as a TREC run")
    add_shop(run)
    run.add_argument("--users", required=True, metavar="FILE", help="one user id per line")
    run.add_argument("--out", required=True, metavar="RUN", help="TREC run file to write (qid = user id)")
    run.add_argument("--top", type=int, default=10, help="items per user (default 10)")
    run.add_argument("--tag", default="shoprank-rec")
    add_diversity(run)
    run.set_defaults(handler=cmd_run)


_shop = existing_shop


def _ranker_line(r: dict) -> str:
    return (f"  ranking    LambdaMART over the candidate sources, {r['best_iteration']} trees: validation NDCG@10 "
            f"{r['valid_ndcg_at_10']:.4f} on {r['stop_users']:,} users it did not learn from (candidates hold "
            f"{r['union_recall_valid']:.1%} of their targets); cold slot {r['cold_slot_threshold']}")


def cmd_train(args: argparse.Namespace) -> int:
    from shoprank.recommend.pipeline import train_recommender
    from shoprank.recommend.training import profile_settings

    shop = _shop(args)
    if args.blend_only:
        from shoprank.recommend.pipeline import reblend

        r = reblend(shop)
        print(f"published recommend bundle {r['version']} (model of {r['from']}) in {r['seconds']:.0f} s")
        print(_ranker_line(r["ranker"]))
        return 0
    overrides = {"epochs": args.epochs} if args.epochs else {}
    epochs = args.epochs or profile_settings(args.profile)["train"]["epochs"]
    print(f"training recommendations for shop '{shop.name}' with the '{args.profile}' profile "
          f"(up to {epochs} epochs, early stopping on validation NDCG@10)"
          + (f", after an Optuna search of {args.tune} trials" if args.tune else ""))
    from shoprank.cluster import RayJobError
    from shoprank.recommend.defences import DEFAULT

    ray = ray_config(args)
    if ray is not None:
        print(f"  on Ray: {ray.workers} workers on {ray.where}")
    try:
        s = train_recommender(shop, args.profile, tune_trials=args.tune, encoder=args.encoder, threads=args.threads,
                              log_dir=args.log_dir, progress=not args.quiet,
                              defences=None if args.no_defences else DEFAULT, ray=ray, **overrides)
    except RayJobError as exc:
        raise CommandError(str(exc)) from None
    print(f"published recommend bundle {s['version']} in {s['seconds']:.0f} s "
          f"({s['training_seconds']:.0f} s of model training)")
    print(f"  data       {s['users']:,} users, {s['items']:,} items, {s['events']:,} events")
    for name, r in (s.get("defences") or {}).items():
        print(f"  defences   {name:<14} dropped {r['events']:,} events ({r['users']:,} users, {r['items']:,} items)")
    print(f"  profile    {s['profile']}: {s['epochs_run']} epochs run, best epoch {s['best_epoch']}, "
          f"{'full softmax' if not s['negatives'] else str(s['negatives']) + ' sampled negatives'}")
    print(f"  validation NDCG@10 {s['best_valid_ndcg@10']:.4f} (second-to-last event, full ranking)")
    if s.get("ray"):
        print(f"  ran on Ray with {s['ray']['workers']} workers ({s['ray']['cluster']} cluster)")
    print(_ranker_line(s["ranker"]))
    if s.get("tuning"):
        print(f"  tuning     best of {s['tuning']['trials']} trials: {s['tuning']['best_params']}")
    print(f"  TensorBoard: tensorboard --logdir {s['tensorboard']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from shoprank.recommend.benchmark import ALL_MODELS, evaluate_shop
    from shoprank.recommend.evaluate import format_table

    check_sweep_options(args)
    shop = _shop(args)
    if args.diversity_sweep:
        if args.models != "all":
            raise CommandError("--models does not apply with --diversity-sweep (it measures the published bundle)")
        import torch

        torch.set_num_threads(max(1, args.threads))
        return run_sweep(args, shop, "recommend")
    models = ALL_MODELS if args.models == "all" else tuple(m.strip() for m in args.models.split(","))
    unknown = set(models) - set(ALL_MODELS)
    if unknown:
        raise CommandError(f"unknown models {sorted(unknown)}; valid: {', '.join(ALL_MODELS)}")
    started = time.perf_counter()
    result = evaluate_shop(shop, models, threads=args.threads, progress=True, breakdown=args.by_history,
                           sample=args.test_users, breakdown_sample=args.test_users or 10_000)
    print(f"leave-one-out full ranking over {result['users']:,} users and {result['items']:,} items "
          f"({result['cold_users']:,} users whose test item is cold: <= 2 training occurrences)")
    print(format_table(result["rows"]))
    if result["by_history_length"]:
        from shoprank.recommend.benchmark import BREAKDOWN_COLUMNS

        print(format_table(result["by_history_length"], BREAKDOWN_COLUMNS))
    print(f"evaluated in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            skip = ("results", "split", "vectors", "catalogue")
            json.dump({k: v for k, v in result.items() if k not in skip}, handle, indent=2)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from shoprank.cascade import Request, pairs
    from shoprank.cli._rerank import batch_cascade, describe
    from shoprank.evaluation.trec import write_run

    if args.top < 1:
        raise CommandError("--top must be at least 1")
    if args.diversity is not None and not 0.0 <= args.diversity <= 1.0:
        raise CommandError(f"--diversity must lie between 0 (off) and 1, got {args.diversity}")
    shop = _shop(args)
    with open(args.users, encoding="utf-8") as handle:
        users = [line.strip() for line in handle if line.strip()]
    cascade = batch_cascade(shop, ("recommend",))
    page_size = cascade.reranking.reranker.config.page_size
    print(describe(cascade.reranking.reranker, args.diversity))
    started = time.perf_counter()
    run = {}
    for user in dict.fromkeys(users):
        ask = Request("recommend", user_id=user, per_page=page_size, limit=args.top, diversity=args.diversity)
        run[user] = pairs(cascade.run_one(ask))
    write_run(args.out, run, tag=args.tag)
    print(f"wrote {sum(len(v) for v in run.values()):,} lines for {len(run):,} users to {args.out} "
          f"with bundle {cascade.recommend.version} in {time.perf_counter() - started:.1f} s")
    return 0
