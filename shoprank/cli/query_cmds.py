"""Ask a trained shop from the command line: ``search``, ``recommend``, ``similar``."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.main import CommandError, add_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    verbs = groups[""]
    search = verbs.add_parser("search", help="search a shop's catalogue with its latest models")
    search.add_argument("query")
    add_shop(search)
    search.add_argument("--k", type=int, default=10, help="results to show (default 10)")
    search.add_argument("--page", type=int, default=1)
    search.add_argument("--category", default=None)
    search.add_argument("--brand", default=None)
    search.add_argument("--in-stock", action="store_true", help="only products in stock")
    search.set_defaults(handler=cmd_search)

    rec = verbs.add_parser("recommend", help="'recommended for you' for a user, from the history in the store")
    add_shop(rec)
    rec.add_argument("--user", required=True, help="user id")
    rec.add_argument("--k", type=int, default=10)
    rec.set_defaults(handler=cmd_recommend)

    similar = verbs.add_parser("similar", help="similar items and bought-together for a product")
    add_shop(similar)
    similar.add_argument("--item", required=True, help="product id")
    similar.add_argument("--k", type=int, default=10)
    similar.set_defaults(handler=cmd_similar)


def _shop(args: argparse.Namespace) -> Any:
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop '{args.shop}' does not exist in {shop.home}")
    return shop


def _print_items(items: list[Any], titles: dict[str, str]) -> None:
    for rank, item in enumerate(items, start=1):
        why = "; ".join(item.reasons)
        print(f"  {rank:2}. [{item.id}] {titles.get(item.id, '')[:80]}  (score {item.score:.3f}; {why})")


def _titles(shop: Any, ids: list[str]) -> dict[str, str]:
    with shop.store(create=False) as store:
        return {p.id: p.title for p in store.get_products(ids) if p is not None}


def cmd_search(args: argparse.Namespace) -> int:
    from shoprank.bundles import BundleError
    from shoprank.results import SearchFilters
    from shoprank.search import SearchEngine

    shop = _shop(args)
    try:
        engine = SearchEngine.load(shop)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    filters = SearchFilters(category=args.category, brand=args.brand, in_stock=True if args.in_stock else None)
    hits, total = engine.search(args.query, k=args.k, offset=(max(args.page, 1) - 1) * args.k, filters=filters)
    print(f"'{args.query}' in shop '{shop.name}': {total:,} candidates, page {args.page}")
    _print_items(hits, _titles(shop, [h.id for h in hits]))
    return 0


def _recommender(shop: Any) -> Any:
    from shoprank.bundles import BundleError
    from shoprank.recommend import Recommender

    try:
        return Recommender.load(shop)
    except BundleError as exc:
        raise CommandError(str(exc)) from None


def cmd_recommend(args: argparse.Namespace) -> int:
    shop = _shop(args)
    recommender = _recommender(shop)
    with shop.store(create=False) as store:
        history = store.user_events(args.user, limit=5)
        titles = {p.id: p.title for p in store.get_products([e.item_id for e in history]) if p is not None}
    print(f"user '{args.user}' in shop '{shop.name}', latest events:")
    for event in history:
        print(f"     {event.type:11} [{event.item_id}] {titles.get(event.item_id, '')[:70]}")
    items = recommender.recommend(args.user, k=args.k)
    print("  recommended for you:")
    _print_items(items, _titles(shop, [i.id for i in items]))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    shop = _shop(args)
    recommender = _recommender(shop)
    for label, items in (("similar items", recommender.similar(args.item, k=args.k)),
                         ("bought together", recommender.bought_together(args.item, k=args.k))):
        print(f"{label} for [{args.item}]:")
        _print_items(items, _titles(shop, [i.id for i in items]))
    return 0
