"""Business rules and re-ranking settings of a shop: ``rules list|add|remove|set-diversity``.

The rules are stored with the shop (``load_rules`` / ``save_rules``), the diversity λ in its
re-ranking settings (``load_config`` / ``save_config``); see ``docs/reranking.md``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from shoprank.cli.main import CommandError, add_shop

ACTIONS = ("pin", "boost", "bury", "hide")  # as in shoprank.rerank.rules; checked there too


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    rules = groups[""].add_parser("rules", help="a shop's business rules (pin, boost, bury, hide) and diversity",
                                  description="a shop's business rules and re-ranking settings")
    verbs = rules.add_subparsers(dest="rules_verb", metavar="WHAT", required=True)

    show = verbs.add_parser("list", help="the shop's rules and re-ranking settings")
    add_shop(show)
    show.add_argument("--json", action="store_true", help="print the stored rule set as JSON")
    show.set_defaults(handler=cmd_list)

    add = verbs.add_parser("add", help="add a rule (or replace the rule with the same --id)")
    add_shop(add)
    add.add_argument("action", choices=ACTIONS, help="what the rule does")
    add.add_argument("--id", type=int, default=None, help="rule id (default: the next free one)")
    add.add_argument("--query", default=None, help="only for this query (normalised)")
    add.add_argument("--match", choices=("exact", "contains"), default="exact",
                     help="exact: the query equals it; contains: its words appear in the query (default exact)")
    add.add_argument("--category", default=None, help="only when browsing or filtering on this category")
    add.add_argument("--products", default="", help="comma-separated product ids the rule acts on")
    add.add_argument("--brand", default=None, help="acts on every product of this brand")
    add.add_argument("--target-category", default=None, help="acts on every product in this category")
    add.add_argument("--amount", type=float, default=None,
                     help="boost/bury: share of the list's score spread to add or subtract (e.g. 0.2)")
    add.add_argument("--position", type=int, default=None, help="pin: the place to pin at (1 = first)")
    add.add_argument("--note", default="", help="free text, e.g. why the rule exists")
    add.add_argument("--disabled", action="store_true", help="store the rule switched off")
    add.set_defaults(handler=cmd_add)

    remove = verbs.add_parser("remove", help="remove a rule by id")
    add_shop(remove)
    remove.add_argument("id", type=int, help="the rule's id")
    remove.set_defaults(handler=cmd_remove)

    diversity = verbs.add_parser("set-diversity", help="the shop's diversity λ (0 = off, 1 = variety only)")
    add_shop(diversity)
    diversity.add_argument("value", type=float, metavar="L", help="λ between 0 and 1")
    diversity.set_defaults(handler=cmd_set_diversity)


def _store(args: argparse.Namespace) -> Any:
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop {args.shop!r} does not exist in {shop.home}")
    return shop.store(create=False)


def _describe(rule: Any) -> str:
    fields = rule.to_dict()
    fields.pop("id")
    action = fields.pop("action")
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"{rule.id:>4}  {action:<6} {rest}"


def cmd_list(args: argparse.Namespace) -> int:
    from shoprank.rerank import load_config, load_rules

    with _store(args) as store:
        ruleset = load_rules(store)
        config = load_config(store)
    if args.json:
        print(ruleset.to_json())
        return 0
    filters = ruleset.to_dict()["filters"]
    hide = "yes" if ruleset.hide_out_of_stock else "no"
    print(f"shop '{args.shop}': diversity λ={config.diversity:g}"
          f"{' (off)' if config.diversity == 0 else ''}, hide out of stock: {hide}"
          f", filters: {json.dumps(filters) if filters else 'none'}")
    if not ruleset.rules:
        print("no rules")
    for rule in ruleset.rules:
        print(_describe(rule))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from shoprank.rerank import Rule, load_rules, save_rules

    products = tuple(p.strip() for p in args.products.split(",") if p.strip())
    with _store(args) as store:
        ruleset = load_rules(store)
        rule_id = args.id if args.id is not None else ruleset.next_id()
        replaced = any(r.id == rule_id for r in ruleset.rules)
        rule = Rule(id=rule_id, action=args.action, query=args.query, match=args.match, category=args.category,
                    products=products, brand=args.brand, target_category=args.target_category,
                    amount=args.amount, position=args.position, enabled=not args.disabled, note=args.note)
        save_rules(store, ruleset.with_rule(rule))
    print(f"{'replaced' if replaced else 'added'} rule {rule_id}: {_describe(rule).strip()}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from shoprank.rerank import load_rules, save_rules

    with _store(args) as store:
        ruleset = load_rules(store)
        try:
            smaller = ruleset.without(args.id)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        save_rules(store, smaller)
    print(f"removed rule {args.id}")
    return 0


def cmd_set_diversity(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from shoprank.rerank import load_config, save_config

    with _store(args) as store:
        config = load_config(store)
        save_config(store, replace(config, diversity=args.value))
    print(f"shop '{args.shop}': diversity λ={args.value:g}" + (" (off)" if args.value == 0 else ""))
    return 0
