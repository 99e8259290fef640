"""Ask a trained shop from the command line: ``search``, ``recommend``, ``similar``.

They answer as the HTTP API does (one cascade: the shop's rules apply, so out-of-stock products stay hidden
where the shop hides them). When ``shoprank serve`` runs on the same home folder, the question goes to it
(``shoprank.local``), which has its models loaded already; otherwise the models are loaded here, with
third-party warnings and progress bars kept off the screen. ``--no-server`` always loads them here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shoprank.cli.main import CommandError, add_shop, existing_shop


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
    search.add_argument("--sort", choices=["relevance", "price_asc", "price_desc", "newest"], default="relevance")
    _add_server(search)
    search.set_defaults(handler=cmd_search)

    rec = verbs.add_parser("recommend", help="'recommended for you' for a user, from the history in the store")
    add_shop(rec)
    rec.add_argument("--user", required=True, help="user id")
    rec.add_argument("--k", type=int, default=10)
    _add_server(rec)
    rec.set_defaults(handler=cmd_recommend)

    similar = verbs.add_parser("similar", help="similar items and bought-together for a product")
    add_shop(similar)
    similar.add_argument("--item", required=True, help="product id")
    similar.add_argument("--k", type=int, default=10)
    _add_server(similar)
    similar.set_defaults(handler=cmd_similar)


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-server", action="store_true",
                        help="load the models in this process even when 'shoprank serve' runs on this home folder")


@dataclass
class Answer:
    """Items as the HTTP API gives them (dicts with id, title, score, reasons, price, ...) and the total."""

    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    via: str = "local"
    did_you_mean: str | None = None
    closest: list[dict[str, Any]] = field(default_factory=list)  # nothing matched: nearest products (shop setting)


_shop = existing_shop


def _server(args: argparse.Namespace, shop: Any) -> tuple[str, str] | None:
    if args.no_server:
        return None
    from shoprank.local import find_server

    return find_server(shop.home)


def _get(server: tuple[str, str], path: str, params: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url, token = server
    try:
        answer = httpx.get(url + path, params={k: v for k, v in params.items() if v is not None},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as exc:
        raise CommandError(f"the server at {url} did not answer ({exc}); retry with --no-server") from None
    body = answer.json()
    if answer.status_code != 200:
        raise CommandError(body.get("error", {}).get("message", f"HTTP {answer.status_code}"))
    return body


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Third-party warnings, log lines and progress bars (transformers, ONNX Runtime, tqdm) kept off the screen
    while models load; errors still raise."""
    import logging
    import warnings

    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"), ("TQDM_DISABLE", "1"),
                        ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    previous = logging.root.manager.disable
    try:
        os.dup2(devnull, 2)  # native libraries write to the descriptor, not to sys.stderr
        logging.disable(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        logging.disable(previous)


def _cascade(shop: Any, surfaces: tuple[str, ...]) -> Any:
    from shoprank.bundles import BundleError
    from shoprank.cascade.load import load_cascade

    try:
        with quiet():
            return load_cascade(shop, surfaces)
    except BundleError as exc:
        raise CommandError(str(exc)) from None


def _hydrate(shop: Any, items: list[Any]) -> list[dict[str, Any]]:
    with shop.store(create=False) as store:
        products = {p.id: p for p in store.get_products([i.id for i in items]) if p is not None}
    out = []
    for item in items:
        p = products.get(item.id)
        out.append({"id": item.id, "title": p.title if p else "", "score": item.score, "reasons": list(item.reasons),
                    "price": p.price if p else None, "currency": (p.currency or None) if p else None,
                    "in_stock": p.in_stock if p else None})
    return out


def _price(item: dict[str, Any]) -> str:
    if item.get("price") is None:
        return ""
    return f"  {item['price']:.2f}{' ' + item['currency'] if item.get('currency') else ''}"


def _print_items(items: list[dict[str, Any]]) -> None:
    if not items:
        print("     (none)")
    for rank, item in enumerate(items, start=1):
        why = "; ".join(item.get("reasons") or [])
        print(f"  {rank:2}. [{item['id']}] {item.get('title', '')[:80]}{_price(item)}  "
              f"(score {item['score']:.3f}; {why})")


def search_answer(args: argparse.Namespace, shop: Any) -> Answer:
    from urllib.parse import quote

    page, k = max(args.page, 1), args.k
    server = _server(args, shop)
    if server is not None:
        body = _get(server, f"/shops/{quote(shop.name)}/search",
                    {"q": args.query, "page": page, "per_page": k, "category": args.category, "brand": args.brand,
                     "in_stock": "true" if args.in_stock else None, "sort": args.sort, "facets": "false"})
        return Answer(body["hits"], int(body["total"]), server[0], body.get("did_you_mean"), body.get("closest") or [])
    from shoprank.cascade import Request
    from shoprank.results import SearchFilters

    filters = SearchFilters(category=args.category, brand=args.brand, in_stock=True if args.in_stock else None)
    answer = _cascade(shop, ("search",)).run_one(Request("search", args.query, filters=filters, page=page,
                                                         per_page=k, sort=args.sort))
    return Answer(_hydrate(shop, answer.items), answer.total, did_you_mean=answer.did_you_mean,
                  closest=_hydrate(shop, answer.closest))


def cmd_search(args: argparse.Namespace) -> int:
    if args.k < 1 or args.k > 100:
        raise CommandError("--k must lie between 1 and 100")
    shop = _shop(args)
    answer = search_answer(args, shop)
    order = "" if args.sort == "relevance" else f", by {args.sort.replace('_', ' ')}"
    print(f"'{args.query}' in shop '{shop.name}': {answer.total:,} results, page {args.page}{order}")
    _print_items(answer.items)
    if answer.did_you_mean:
        print(f"  did you mean '{answer.did_you_mean}'?")
    if answer.closest:
        print("  closest products (they do not match the query):")
        _print_items(answer.closest)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    shop = _shop(args)
    with shop.store(create=False) as store:
        history = store.user_events(args.user, limit=5)
        titles = {p.id: p.title for p in store.get_products([e.item_id for e in history]) if p is not None}
    server = _server(args, shop)
    if server is not None:
        items = _get(server, f"/shops/{quote(shop.name)}/users/{quote(args.user, safe='')}/recommendations",
                     {"k": args.k})["items"]
    else:
        from shoprank.cascade import Request

        page = _cascade(shop, ("recommend",)).run_one(Request("recommend", user_id=args.user, per_page=args.k))
        items = _hydrate(shop, page.items)
    print(f"user '{args.user}' in shop '{shop.name}', latest events:")
    for event in history:
        print(f"     {event.type:11} [{event.item_id}] {titles.get(event.item_id, '')[:70]}")
    print("  recommended for you:")
    _print_items(items)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    shop = _shop(args)
    with shop.store(create=False) as store:
        if store.get_product(args.item) is None:
            raise CommandError(f"shop '{shop.name}' has no product '{args.item[:100]}'")
    server = _server(args, shop)
    lists = []
    if server is not None:
        base = f"/shops/{quote(shop.name)}/products/{quote(args.item, safe='')}"
        lists = [_get(server, f"{base}/{path}", {"k": args.k})["items"] for path in ("similar", "bought-together")]
    else:
        from shoprank.cascade import Request

        cascade = _cascade(shop, ("similar",))
        try:
            for surface in ("similar", "bought_together"):
                page = cascade.run_one(Request(surface, item_id=args.item, per_page=args.k))
                lists.append(_hydrate(shop, page.items))
        except KeyError:  # in the catalogue, but the model has not seen it: nothing like it yet
            raise CommandError(f"the recommendation model does not know product '{args.item[:100]}' yet; "
                               "retrain or try again once the server has picked it up") from None
    for label, items in zip(("similar items", "bought together"), lists, strict=True):
        print(f"{label} for [{args.item}]:")
        _print_items(items)
    return 0

