"""A shop's search settings: ``settings search --shop S [--closest-on-empty N]``.

Without an option it prints them; with one it changes that setting (the others keep theirs) and prints the
result. The same settings ``GET/PUT /shops/{shop}/settings/search`` read and change
(:mod:`shoprank.search.settings`); a bad value is refused and nothing is stored.
"""

from __future__ import annotations

import argparse
import json

from shoprank.cli.main import add_verb, existing_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    settings = groups[""].add_parser("settings", help="a shop's search settings (e.g. closest products on no match)",
                                     description="a shop's settings; re-ranking ones are under 'shoprank rules'")
    verbs = settings.add_subparsers(dest="settings_verb", metavar="WHAT", required=True)
    search = add_verb(verbs, "search", "show the shop's search settings, or change those given", cmd_search)
    search.add_argument("--closest-on-empty", type=int, default=None, metavar="N",
                        help="a query nothing matches also answers the N products closest to it in meaning, "
                             "marked as not matching (0 = none, the default; at most 50)")
    search.add_argument("--json", action="store_true", help="print the settings as JSON")


def cmd_search(args: argparse.Namespace) -> int:
    from shoprank.search.settings import load_search_settings, save_search_settings

    shop = existing_shop(args)
    changes = {"closest_on_empty": args.closest_on_empty} if args.closest_on_empty is not None else {}
    with shop.store(create=False) as store:
        settings = load_search_settings(store)
        if changes:
            settings = settings.updated(changes)  # a SettingError (ValueError) is printed, nothing stored
            save_search_settings(store, settings)
    shown = settings.to_dict()
    shown.pop("version")
    if args.json:
        print(json.dumps(shown))
        return 0
    closest = settings.closest_on_empty
    print(f"shop '{args.shop}'{' (changed)' if changes else ''}: closest_on_empty={closest}"
          + (" (off: a query nothing matches answers no products)" if closest == 0 else
             f" (a query nothing matches also shows the {closest} closest products, marked as not matching)"))
    return 0
