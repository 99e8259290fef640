"""``shoprank``: the command line. Its verbs are the library's verbs.

Each ``shoprank/cli/*_cmds.py`` module registers its commands; heavy imports happen inside
the handlers, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

COMMAND_MODULES = (
    "shoprank.cli.data_cmds",
    "shoprank.cli.search_cmds",
    "shoprank.cli.recommend_cmds",
    "shoprank.cli.serve_cmds",
    "shoprank.cli.query_cmds",
    "shoprank.cli.demo_cmds",
    "shoprank.cli.rules_cmds",
    "shoprank.cli.models_cmds",
    "shoprank.cli.learn_cmds",
    "shoprank.cli.answers_cmds",
    "shoprank.cli.sentiment_cmds",
    "shoprank.cli.analytics_cmds",
    "shoprank.cli.experiment_cmds",
    "shoprank.cli.synonym_cmds",
    "shoprank.cli.settings_cmds",
)

GROUPS = {
    "train": "train models for a shop and publish them",
    "evaluate": "offline evaluation against baselines on held-out data",
    "run": "batch runs over a file of queries, pairs or users; writes TREC run files",
}


Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """An error the user can fix; printed without a traceback."""


def add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", default=None, help="data folder holding the shops (default: $SHOPRANK_HOME or ./shoprank-data)"
    )
    parser.add_argument(
        "--store", default=None, metavar="URL",
        help="where the shops' records live: postgresql://user:password@host:5432/db shared by several processes "
             "(default: $SHOPRANK_STORE, else one SQLite file per shop in the data folder)",
    )


def add_shop(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--shop", required=required, help="shop name")
    add_home(parser)


def add_verb(verbs: argparse._SubParsersAction, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """One verb of a command group (``shoprank synonyms add ...``): a sub-parser taking ``--shop`` that runs
    ``handler``; the caller adds the verb's own arguments to the parser it returns."""
    parser = verbs.add_parser(name, help=help)
    add_shop(parser)
    parser.set_defaults(handler=handler)
    return parser


def existing_shop(args: argparse.Namespace, hint: str = "") -> Any:
    """The shop ``--shop`` names in ``--home``; a CommandError when it does not exist (``hint``: what to do)."""
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop {args.shop!r} does not exist in {shop.home}" + (f"; {hint}" if hint else ""))
    return shop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoprank",
        description="Search and recommendations for online shops, fine-tuned on the shop's own data.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {"": verbs}
    for name, help_text in GROUPS.items():
        group = verbs.add_parser(name, help=help_text, description=help_text)
        groups[name] = group.add_subparsers(dest="target", metavar="WHAT", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from shoprank import __version__

        print(__version__)
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    from shoprank.store import StoreError, selected_store

    try:
        with selected_store(getattr(args, "store", None)):
            result = handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CommandError, FileNotFoundError, ValueError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
