"""``shoprank demo``: two demo shops from real public data, trained and served.

Home Depot (search) and Amazon Games (recommendations) are imported from the local data
folder, trained with the demo profile (said on screen: the quick profile with shorter product texts
and fewer epochs, so set-up takes minutes on a 2-core CPU), shown, then served at
http://127.0.0.1:8000. Later runs reuse what was built.
"""

from __future__ import annotations

import argparse
import time

from shoprank.cli.main import CommandError, add_home

DEMO_SHOPS = (
    # (shop, data set, what to train)
    ("homedepot", "homedepot", "search"),
    ("games", "amazon-games", "recommend"),
)
EXAMPLE_QUERIES = ("cordless drill", "1/2 in. pvc elbow", "paint for deck")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    demo = groups[""].add_parser(
        "demo", help="import two demo shops from public data, train them (quick profile) and serve them"
    )
    add_home(demo)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--profile", default="demo", choices=["demo", "quick", "full"],
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


def cmd_demo(args: argparse.Namespace) -> int:
    from shoprank.bundles import latest_version
    from shoprank.datasets import data_root
    from shoprank.shops import Shop, default_home

    home = args.home or str(default_home())
    began = time.perf_counter()
    print(f"shoprank demo: data folder {home}, public data from {data_root()}")
    for name, dataset, kind in DEMO_SHOPS:
        shop = Shop(name, home)
        if not shop.exists():
            _step(f"importing {dataset} into shop '{name}'")
            _run(["datasets", "import", dataset, "--shop", name, "--home", home])
        else:
            print(f"shop '{name}' already imported; reusing it")
        if latest_version(shop.models_path, kind) is None:
            _step(f"training {kind} for shop '{name}' with the {args.profile} profile"
                  + (" (shorter texts and fewer epochs than the quality figures' profiles)"
                     if args.profile == "demo" else ""))
            _run(["train", kind, "--shop", name, "--home", home, "--profile", args.profile,
                  "--threads", str(args.threads)])
        else:
            print(f"shop '{name}' already has a trained {kind} model; reusing it")

    _step("search on shop 'homedepot'")
    for query in EXAMPLE_QUERIES:
        _run(["search", query, "--shop", "homedepot", "--home", home, "--k", "5"])
    _step("recommendations on shop 'games'")
    _run(["recommend", "--shop", "games", "--home", home, "--user", "0", "--k", "5"])
    print(f"\ndemo set-up finished in {time.perf_counter() - began:.0f} s")
    if args.no_serve:
        return 0
    from shoprank.serving import demo_serve

    return int(demo_serve(home=home, host=args.host, port=args.port, open_access=args.open) or 0)
