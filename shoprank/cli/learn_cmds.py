"""Commands of the shop's first minute and of learning as traffic arrives: ``baseline`` and ``train watch``."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
from pathlib import Path

from shoprank.cli._ray import add_workers, ray_config
from shoprank.cli.main import CommandError, add_shop
from shoprank.training.profiles import PROFILE_NAMES


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    baseline = groups[""].add_parser(
        "baseline", help="build the untrained baseline bundles of a shop now: BM25 search at once, then the "
                         "catalogue's embeddings (with progress) for hybrid search and text similarity")
    add_shop(baseline)
    baseline.add_argument("--lexical-only", action="store_true", help="stop after the BM25 bundle")
    add_workers(baseline, "embed the catalogue")
    baseline.set_defaults(handler=cmd_baseline)

    watch = groups["train"].add_parser(
        "watch", help="retrain search and recommendations whenever enough new traffic arrived; publish a "
                      "candidate only if it is not worse than the serving model on the most recent traffic")
    add_shop(watch)
    watch.add_argument("--every", default="1h", help="how often to look (30m, 1h, 1d; default 1h)")
    watch.add_argument("--once", action="store_true", help="one round, then exit")
    watch.add_argument("--min-new-events", type=int, default=1000,
                       help="retrain a kind once this many events arrived since its model (default 1000)")
    watch.add_argument("--holdout-share", type=float, default=0.1,
                       help="share of the most recent traffic held out to compare the models (default 0.1)")
    watch.add_argument("--tolerance", type=float, default=0.0,
                       help="publish when candidate >= serving - this, in NDCG@10 (default 0: not worse)")
    watch.add_argument("--kinds", default="recommend,search", help="what to retrain (default recommend,search)")
    watch.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    watch.add_argument("--threads", type=int, default=2)
    watch.set_defaults(handler=cmd_train_watch)


def cmd_baseline(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shoprank.baseline import embed_and_publish, publish_recommend, publish_search, trained_version
    from shoprank.baseline.worker import builder_lock
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"there is no shop '{args.shop}'; 'shoprank ingest products FILE --shop {args.shop}'")
    for kind in ("search", "recommend"):
        if trained_version(shop, kind):
            print(f"shop '{shop.name}' serves a trained {kind} model ({trained_version(shop, kind)}); "
                  "no baseline needed")
    search, _ = publish_search(shop)
    recommend = publish_recommend(shop)
    print(f"baseline published: search {search or '-'} (BM25), recommendations {recommend or '-'} "
          "(trending, item-to-item, keyword text similarity)", flush=True)
    if args.lexical_only or (search is None and recommend is None):
        return 0
    with builder_lock(shop) as mine:
        if not mine:
            raise CommandError(f"another process is embedding shop '{shop.name}' now (its progress: "
                               f"{shop.path / 'cache' / 'baseline-progress.json'})")
        bar = tqdm(desc="embedding the catalogue", unit=" products", mininterval=0.5)

        def show(info: dict) -> None:
            bar.total = info["total"]
            bar.n = info["done"]
            bar.refresh()

        from shoprank.cluster import RayJobError

        ray = ray_config(args)
        try:
            info = embed_and_publish(shop, show, ray=ray)
        except RayJobError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
    where = f" (embedded on Ray with {ray.workers} workers)" if ray is not None else ""
    print(f"hybrid baseline published in {info['seconds']:.0f} s{where}: search {info['search'] or '-'}, "
          f"recommendations {info['recommend'] or '-'}; a running server swaps them in")
    return 0


def _retrain_config(args: argparse.Namespace) -> object:
    from shoprank.retrain import RetrainConfig

    try:
        return RetrainConfig(min_new_events=args.min_new_events, holdout_share=args.holdout_share,
                             tolerance=args.tolerance, profile=args.profile, threads=args.threads)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def cmd_train_watch(args: argparse.Namespace) -> int:
    from shoprank.retrain import parse_duration, watch
    from shoprank.retrain.loop import KINDS, retrain_once
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"there is no shop '{args.shop}'")
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or set(kinds) - set(KINDS):
        raise CommandError(f"--kinds takes {', '.join(KINDS)}")
    try:
        every = parse_duration(args.every)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    config = _retrain_config(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def show(verdicts: list) -> None:
        for v in verdicts:
            figures = "" if v.candidate is None else (
                f" (candidate {v.candidate:.4f}" + ("" if v.serving is None else f", serving {v.serving:.4f}") +
                f", {v.held_out} held out)")
            print(f"{shop.name} {v.kind}: {v.decision}{figures}: {v.reason}"
                  + (f" -> {v.version}" if v.version else ""), flush=True)

    if args.once:
        show(retrain_once(shop, config, kinds))  # type: ignore[arg-type]
        return 0
    print(f"watching shop '{shop.name}' every {args.every}; Ctrl+C stops", flush=True)
    try:
        watch(shop, every, config, on_round=show)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    return 0


def start_retraining(home: Path, every: float, stop: threading.Event) -> threading.Thread:
    """``serve --retrain-every``: each period, one ``train watch --once`` process per shop (niced, one at a time),
    so training never runs inside the serving process; the server's watcher swaps in what gets published."""
    from shoprank.shops import list_shops

    def loop() -> None:
        while not stop.wait(every):
            for shop in list_shops(home):
                if stop.is_set():
                    return
                command = ["nice", "-n", "10", sys.executable, "-m", "shoprank", "train", "watch", "--once",
                           "--shop", shop.name, "--home", str(home)]
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                for line in result.stdout.splitlines():
                    logging.getLogger("shoprank.retrain").info("%s", line)
                if result.returncode:
                    logging.getLogger("shoprank.retrain").error("shop %s: retraining failed: %s", shop.name,
                                                                result.stderr.strip()[-500:])

    thread = threading.Thread(target=loop, name="shoprank-retrain", daemon=True)
    thread.start()
    return thread
