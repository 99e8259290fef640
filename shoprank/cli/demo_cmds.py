"""``shoprank demo``: two demo shops from real public data, served at once and trained in the background.

Home Depot (search) and Amazon Games (recommendations) are imported from the local data folder and served at
http://127.0.0.1:8000 right away by the untrained baseline stack (BM25 search, trending and item-to-item
recommendations). Meanwhile one background process trains them with the demo profile (said on screen: the
quick profile with shorter product texts and fewer epochs); the server swaps each trained model in when it is
published and says so. Later runs reuse what was built. ``--no-serve`` trains first, then shows results.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shoprank.cli.main import CommandError, add_home
from shoprank.training.profiles import PROFILE_NAMES

DEMO_SHOPS = (
    # (shop, data set, what to train)
    ("homedepot", "homedepot", "search"),
    ("games", "amazon-games", "recommend"),
)
EXAMPLE_QUERIES = ("cordless drill", "1/2 in. pvc elbow", "paint for deck")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    demo = groups[""].add_parser(
        "demo", help="import two demo shops from public data, serve them at once and train them in the background "
                     "(demo profile)"
    )
    add_home(demo)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--profile", default="demo", choices=PROFILE_NAMES,
                      help="training profile (default: demo, the quick profile with 16-token product texts for "
                           "search and 6 epochs for recommendations; the quality figures in docs/ use quick or "
                           "full)")
    demo.add_argument("--threads", type=int, default=2, help="CPU threads for training (default 2)")
    demo.add_argument("--no-serve", action="store_true", help="stop after showing results")
    demo.add_argument("--open", action="store_true", help="serve without API keys (the page warns about it)")
    demo.set_defaults(handler=cmd_demo)


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _run(argv: list[str]) -> None:
    from shoprank.cli.main import main

    code = main(argv)
    if code != 0:
        raise CommandError(f"'shoprank {' '.join(argv)}' failed (exit {code})")


def _training_commands(home: str, profile: str, threads: int) -> list[list[str]]:
    """``train`` command lines for the demo shops that have no trained model yet."""
    from shoprank.baseline import trained_version
    from shoprank.shops import Shop

    return [["train", kind, "--shop", name, "--home", home, "--profile", profile, "--threads", str(threads),
             "--quiet"] for name, _, kind in DEMO_SHOPS if trained_version(Shop(name, home), kind) is None]


def start_training(commands: list[list[str]], log_path: Path) -> subprocess.Popen[bytes]:
    """One niced background process running the ``train`` commands one after the other, output to ``log_path``."""
    import shlex

    script = " && ".join(shlex.join([sys.executable, "-m", "shoprank", *c]) for c in commands)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(["nice", "-n", "10", "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from shoprank.datasets import data_root
    from shoprank.shops import Shop, default_home

    home = args.home or str(default_home())
    began = time.perf_counter()
    print(f"shoprank demo: data folder {home}, public data from {data_root()}")
    for name, dataset, _ in DEMO_SHOPS:
        shop = Shop(name, home)
        if not shop.exists():
            _step(f"importing {dataset} into shop '{name}'")
            _run(["datasets", "import", dataset, "--shop", name, "--home", home])
        else:
            print(f"shop '{name}' already imported; reusing it")
    if not args.no_serve:
        return _serve_while_training(args, home, began)
    _train_first(args, home)
    _show_results(home)
    print(f"\ndemo set-up finished in {time.perf_counter() - began:.0f} s")
    return 0


def _serve_while_training(args: argparse.Namespace, home: str, began: float) -> int:
    from shoprank.serving import ServingConfig, demo_serve

    commands = _training_commands(home, args.profile, args.threads)
    training = None
    if commands:
        log_path = Path(home) / "demo-training.log"
        training = start_training(commands, log_path)
        what = ", ".join(f"{c[1]} for '{c[3]}'" for c in commands)
        _step(f"training {what} in the background with the {args.profile} profile"
              + (" (shorter texts and fewer epochs than the quality figures' profiles)" if args.profile == "demo"
                 else "") + f"; progress in {log_path}")
        print("until each model is trained, the baseline stack answers (BM25 search, trending and item-to-item "
              "recommendations); the server swaps the trained model in when it is published and says so here")
    else:
        print("every demo shop already has its trained model; reusing them")
    print(f"set-up before serving: {time.perf_counter() - began:.0f} s")
    try:  # no background embedding while training runs: the two cores go to training
        config = ServingConfig(baseline_embeddings=training is None)
        return int(demo_serve(home=home, host=args.host, port=args.port, open_access=args.open, config=config,
                              training=training) or 0)
    finally:
        if training is not None and training.poll() is None:
            os.killpg(training.pid, signal.SIGTERM)
            print("background training stopped; the next 'shoprank demo' starts it again")


def _train_first(args: argparse.Namespace, home: str) -> None:
    from shoprank.bundles import latest_version
    from shoprank.shops import Shop

    for name, _, kind in DEMO_SHOPS:
        shop = Shop(name, home)
        if latest_version(shop.models_path, kind) is None or \
                latest_version(shop.models_path, kind).startswith("baseline-"):
            _step(f"training {kind} for shop '{name}' with the {args.profile} profile"
                  + (" (shorter texts and fewer epochs than the quality figures' profiles)"
                     if args.profile == "demo" else ""))
            _run(["train", kind, "--shop", name, "--home", home, "--profile", args.profile,
                  "--threads", str(args.threads)])
        else:
            print(f"shop '{name}' already has a trained {kind} model; reusing it")


def _show_results(home: str) -> None:
    _step("search on shop 'homedepot'")
    for query in EXAMPLE_QUERIES:
        _run(["search", query, "--shop", "homedepot", "--home", home, "--k", "5"])
    _step("recommendations on shop 'games'")
    _run(["recommend", "--shop", "games", "--home", home, "--user", "0", "--k", "5"])
