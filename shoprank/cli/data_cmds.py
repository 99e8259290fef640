"""Data commands: ``ingest``, ``datasets``, ``shops`` (list, delete), ``products delete``, ``users delete``.

A refused command leaves nothing behind: a shop that an ingest or import would have created is removed
again when it fails."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shoprank.cli.main import CommandError, add_home, add_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    verbs = groups[""]
    ingest = verbs.add_parser("ingest", help="validate and store products, events, judgments, impressions or "
                              "reviews from a file")
    ingest.add_argument("kind", choices=["products", "events", "judgments", "impressions", "reviews"])
    ingest.add_argument("file", help="a .jsonl, .csv, .tsv or .parquet file")
    add_shop(ingest)
    ingest.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                        help="read FIELD from COLUMN (repeatable), e.g. --map title=product_title")
    ingest.add_argument("--format", choices=["jsonl", "csv", "tsv", "parquet"], default=None)
    ingest.add_argument("--skip-invalid", action="store_true",
                        help="store the valid rows and report the bad ones (default: any bad row refuses the file)")
    ingest.add_argument("--rejects", default=None, metavar="FILE",
                        help="with --skip-invalid, write the rejected rows' line, field and reason here (JSONL)")
    ingest.add_argument("--encoding", default=None,
                        help="the file's text encoding, e.g. latin-1 or cp1252 (default: UTF-8, or UTF-16 when the "
                             "file starts with its byte-order mark)")
    ingest.add_argument("--replace", action="store_true",
                        help="products: each record replaces the stored product whole (default: merge, so fields "
                             "and attributes the file does not set keep their stored values)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(handler=cmd_ingest)

    datasets = verbs.add_parser("datasets", help="public data sets: list them, import one into a shop")
    sub = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the data sets that can be imported and where they are published")
    listing.set_defaults(handler=cmd_datasets_list)
    imp = sub.add_parser("import", help="import a data set into a shop")
    imp.add_argument("name", help="homedepot, crowdflower, amazon-games, multicpr-zh, or atomic")
    add_shop(imp)
    imp.add_argument("--path", default=None,
                     help="folder holding the set's files (default: $SHOPRANK_DATA/<set> or ../shared/datasets/<set>)")
    imp.add_argument("--inter", default=None, help="atomic: the .inter file")
    imp.add_argument("--items", default=None, help="atomic: the .item or .text file")
    imp.add_argument("--item2index", default=None, help="atomic: the .item2index file")
    imp.set_defaults(handler=cmd_datasets_import)

    shops = verbs.add_parser("shops", help="list the shops with their counts; 'shops delete NAME' removes one")
    add_home(shops)
    shops.add_argument("--json", action="store_true")
    shops.set_defaults(handler=cmd_shops)
    shop_actions = shops.add_subparsers(dest="action", metavar="ACTION")
    delete = shop_actions.add_parser("delete", help="delete a shop: its catalogue, events, judgments, settings "
                                     "and models")
    delete.add_argument("name")
    delete.add_argument("--home", default=argparse.SUPPRESS, help="data folder holding the shops")
    delete.add_argument("--yes", action="store_true", help="do it (without it the command says what would go)")
    delete.set_defaults(handler=cmd_shops_delete)

    products = verbs.add_parser("products", help="catalogue changes beside ingest: delete products")
    product_actions = products.add_subparsers(dest="action", metavar="ACTION", required=True)
    pdelete = product_actions.add_parser("delete", help="delete products by id (all or none: an unknown id "
                                         "refuses the command)")
    pdelete.add_argument("ids", nargs="+", metavar="ID")
    add_shop(pdelete)
    pdelete.set_defaults(handler=cmd_products_delete)

    users = verbs.add_parser("users", help="a user's data: delete it (privacy requests)")
    user_actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    udelete = user_actions.add_parser("delete", help="delete everything stored about a user: events (so "
                                      "personalisation) and impressions")
    udelete.add_argument("user_id")
    add_shop(udelete)
    udelete.set_defaults(handler=cmd_users_delete)


def _open_shop(args: argparse.Namespace) -> Any:
    from shoprank.shops import Shop

    return Shop(args.shop, args.home)


def _existing_shop(args: argparse.Namespace) -> Any:
    shop = _open_shop(args)
    if not shop.exists():
        raise CommandError(f"shop '{shop.name}' does not exist in {shop.home}")
    return shop


@contextmanager
def _created_or_kept(shop: Any) -> Iterator[Any]:
    """The shop's store, created when missing; a shop created here is removed again if the block fails."""
    created = not shop.exists()
    try:
        with shop.store() as store:
            yield store
    except BaseException:
        if created:
            shop.delete()
        raise


def cmd_ingest(args: argparse.Namespace) -> int:
    from shoprank.data.ingest import IngestError, ingest_file
    from shoprank.data.readers import parse_mapping

    if args.rejects and not args.skip_invalid:
        raise CommandError("--rejects goes with --skip-invalid")
    if args.replace and args.kind != "products":
        raise CommandError("--replace applies to products only")
    mapping = parse_mapping(args.map)
    shop = _open_shop(args)
    start = time.perf_counter()
    with _created_or_kept(shop) as store:
        try:
            report = ingest_file(
                store, args.kind, args.file, mapping=mapping, fmt=args.format,
                skip_invalid=args.skip_invalid, rejects_path=args.rejects, progress=not args.quiet,
                encoding=args.encoding, replace=args.replace, check_items=True,
            )
        except IngestError as exc:
            raise CommandError(str(exc)) from None
    took = time.perf_counter() - start
    s = report.summary()
    print(
        f"{args.kind} into shop '{shop.name}': read {s['read']:,}, stored {s['stored']:,}, "
        f"updated {s['updated']:,}, duplicates {s['duplicates']:,}, rejected {s['rejected']:,} "
        f"in {took:.1f} s"
    )
    if "attribution" in s:
        a = s["attribution"]
        reasons = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in a["unattributed_by_reason"].items())
        print(f"  request ids: {a['attributed']:,} events attributed to impressions, {a['unattributed']:,} stored "
              f"unattributed" + (f" ({reasons})" if reasons else ""))
    if args.kind == "reviews":
        from shoprank.sentiment.service import after_ingest

        with shop.store() as store:
            after_ingest(store, shop.models_path, report.flagged)
    for error in report.errors[:20]:
        print(f"  rejected {error}")
    if args.rejects and report.errors:
        print(f"  all rejected rows with reasons: {args.rejects}")
    return 0


def cmd_datasets_list(args: argparse.Namespace) -> int:
    from shoprank.datasets import DATASETS, data_root, dataset_module

    root = data_root()
    for name in DATASETS:
        module = dataset_module(name)
        where = root / module.FOLDER
        state = "found" if where.exists() else "not found"
        print(f"{name:14} {state:9} {where}\n{'':14} published at {module.PUBLISHED}")
    print(f"{'atomic':14} any RecBole/UniSRec atomic files: --inter FILE [--items FILE] [--item2index FILE]")
    return 0


def cmd_datasets_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shoprank.data.ingest import IngestError
    from shoprank.datasets import atomic, import_rows, load_dataset

    start = time.perf_counter()
    if args.name == "atomic":
        if not args.inter:
            raise CommandError("the atomic importer needs --inter FILE (and usually --items FILE)")
        rows = atomic.load(
            Path(args.inter),
            Path(args.items) if args.items else None,
            Path(args.item2index) if args.item2index else None,
        )
    else:
        rows = load_dataset(args.name, args.path)
    shop = _open_shop(args)
    with _created_or_kept(shop) as store:
        try:
            summary = import_rows(store, rows)
        except IngestError as exc:
            raise CommandError(str(exc)) from None
        counts = store.counts()
    took = time.perf_counter() - start
    print(f"imported {args.name} into shop '{shop.name}' in {took:.1f} s")
    for kind, numbers in summary.items():
        if numbers["read"]:
            print(f"  {kind:10} read {numbers['read']:>9,}  stored {numbers['stored']:>9,}  "
                  f"updated {numbers['updated']:>7,}  duplicates {numbers['duplicates']:>7,}")
    print("  shop now holds: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    return 0


def cmd_shops(args: argparse.Namespace) -> int:
    from shoprank.shops import default_home, list_shops

    rows = []
    for shop in list_shops(args.home):
        with shop.store() as store:
            rows.append({"shop": shop.name, **store.counts()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no shops in {args.home or default_home()}")
        return 0
    print(f"{'shop':20} {'products':>10} {'events':>10} {'users':>9} {'judgments':>10} {'impressions':>12}")
    for row in rows:
        print(f"{row['shop']:20} {row['products']:>10,} {row['events']:>10,} {row['users']:>9,} "
              f"{row['judgments']:>10,} {row.get('impressions', 0):>12,}")
    return 0


def cmd_shops_delete(args: argparse.Namespace) -> int:
    from shoprank.shops import Shop

    shop = Shop(args.name, getattr(args, "home", None))
    if not shop.exists():
        raise CommandError(f"shop '{shop.name}' does not exist in {shop.home}")
    with shop.store(create=False) as store:
        counts = store.counts()
    what = ", ".join(f"{counts[k]:,} {k}" for k in ("products", "events", "judgments"))
    if not args.yes:
        raise CommandError(f"this deletes shop '{shop.name}' ({what}, its settings and models) for good; "
                           "repeat with --yes to do it")
    shop.delete()
    print(f"deleted shop '{shop.name}' ({what})")
    return 0


def cmd_products_delete(args: argparse.Namespace) -> int:
    shop = _existing_shop(args)
    ids = list(dict.fromkeys(args.ids))
    with shop.store(create=False) as store:
        missing = [i for i, p in zip(ids, store.get_products(ids), strict=True) if p is None]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:10])
            raise CommandError(f"shop '{shop.name}' has no product {shown}; nothing was deleted")
        deleted = store.delete_products(ids)
    print(f"deleted {deleted:,} product(s) from shop '{shop.name}'; they leave search and recommendations at once "
          "on a running server")
    return 0


def cmd_users_delete(args: argparse.Namespace) -> int:
    shop = _existing_shop(args)
    with shop.store(create=False) as store:
        removed = store.delete_user(args.user_id)
    what = ", ".join(f"{n:,} {kind}" for kind, n in removed.items())
    print(f"deleted user '{args.user_id}' from shop '{shop.name}': {what}")
    return 0
