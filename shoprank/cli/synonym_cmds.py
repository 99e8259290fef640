"""``shoprank synonyms list|add|remove|set|weight|suggest``: a shop's synonym sets and the weight of the terms they
add (``docs/analytics.md``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError, add_verb, existing_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("synonyms", help="a shop's synonyms ('couch, sofa' or 'tv => television')",
                                   description="a shop's synonym sets, applied to search queries")
    verbs = parser.add_subparsers(dest="synonyms_verb", metavar="WHAT", required=True)
    add_verb(verbs, "list", "the rules, numbered", cmd_list)
    add_verb(verbs, "add", "add a rule: 'couch, sofa, settee' or 'tv => television'", cmd_add).add_argument("rule")
    add_verb(verbs, "remove", "remove rule N (as numbered by list)", cmd_remove).add_argument("number", type=int)
    add_verb(verbs, "set", "replace every rule from a file: one rule a line, or JSON {\"synonyms\": [...]}",
             cmd_set).add_argument("file", type=Path)
    add_verb(verbs, "weight", "show, or set, the BM25 weight of the terms synonyms add (0 < W <= 1; typed terms "
             "weigh 1)", cmd_weight).add_argument("value", nargs="?", metavar="W")
    add_verb(verbs, "suggest", "synonyms mined from the last 90 days of searches", cmd_suggest)


_shop = existing_shop


def _save(args: argparse.Namespace, rules: list[Any], weight: Any = None) -> Any:
    """Store ``rules`` with ``weight`` (None: the shop's current weight)."""
    from shoprank.synonyms import SynonymError, Synonyms, save_synonyms

    try:
        synonyms = Synonyms.from_dict({"synonyms": rules,
                                       "weight": _weight(args) if weight is None else weight})
    except SynonymError as exc:
        raise CommandError(f"{exc.field}: {exc.message}") from None
    with _shop(args).store(create=False) as store:
        save_synonyms(store, synonyms)
    return synonyms


def _stored(args: argparse.Namespace) -> dict[str, Any]:
    from shoprank.synonyms import load_synonyms

    with _shop(args).store(create=False) as store:
        return load_synonyms(store).to_dict()


def _current(args: argparse.Namespace) -> list[str]:
    return _stored(args)["synonyms"]


def _weight(args: argparse.Namespace) -> float:
    return _stored(args)["weight"]


def cmd_list(args: argparse.Namespace) -> int:
    stored = _stored(args)
    rules = stored["synonyms"]
    print(f"added terms weigh {stored['weight']:g} (typed terms 1)")
    print("\n".join(f"{n:>4}  {r}" for n, r in enumerate(rules, 1)) if rules else "no synonyms")
    return 0


def cmd_weight(args: argparse.Namespace) -> int:
    if args.value is None:
        print(f"{_weight(args):g}")
        return 0
    try:
        value = float(args.value)
    except ValueError:
        raise CommandError(f"weight: must be a number above 0 and at most 1, got {args.value!r}") from None
    synonyms = _save(args, _current(args), value)
    print(f"added terms now weigh {synonyms.weight:g} (typed terms 1)")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    synonyms = _save(args, [*_current(args), args.rule])
    print(f"added: {synonyms.rules[-1].to_text()} ({len(synonyms.rules)} rules)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    rules = _current(args)
    if not 1 <= args.number <= len(rules):
        raise CommandError(f"there is no rule {args.number}; the shop has {len(rules)}")
    gone = rules.pop(args.number - 1)
    _save(args, rules)
    print(f"removed: {gone}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")
    weight = None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            rules, weight = data.get("synonyms"), data.get("weight")
        except (json.JSONDecodeError, AttributeError):
            raise CommandError(f"{args.file}: not a JSON object with a 'synonyms' list") from None
    else:
        rules = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    synonyms = _save(args, rules, weight)
    print(f"{len(synonyms.rules)} rules stored")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    import time

    from shoprank.synonyms import load_synonyms, mine_synonyms

    with _shop(args).store(create=False) as store:
        found = mine_synonyms(store.impression_outcomes(since=time.time() - 90 * 86_400, surfaces=["search"]),
                              load_synonyms(store))
    if not found:
        print("nothing to suggest yet")
    for s in found:
        print(f"{s['rule']:<40} {s['kind']:<14} evidence {s['evidence']}")
    print("accept one with: shoprank synonyms add 'RULE' --shop " + args.shop if found else "")
    return 0
