"""Serving commands: ``serve`` and ``keys create|list|revoke``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from shoprank.cli.main import CommandError, add_home


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    verbs = groups[""]
    serve = verbs.add_parser("serve", help="serve search, recommendations and the storefront page over HTTP")
    add_home(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--open", action="store_true", dest="open_access",
                       help="DEMO ONLY: answer requests without a key (the page shows a warning)")
    serve.add_argument("--watch", type=float, default=5.0, metavar="SECONDS",
                       help="look for new model bundles this often (0: off, also for --sync; default 5)")
    serve.add_argument("--sync", type=float, default=1.0, metavar="SECONDS",
                       help="follow the store's changes (products, rules, settings written by other processes or "
                            "replicas) this often (default 1)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes on the one port (about the number of cores; default 1): each loads "
                            "the engines and follows the store like a replica")
    serve.add_argument("--max-in-flight", type=int, default=32,
                       help="requests admitted at once; more get 503 + Retry-After (default 32)")
    serve.add_argument("--engine-concurrency", type=int, default=2,
                       help="engine calls run at once, about the number of cores (default 2)")
    serve.add_argument("--engine-queue-ms", type=float, default=100.0,
                       help="refuse (503 + Retry-After) a call that cannot reach an engine within this many ms, so "
                            "served requests keep their latency under overload (0: wait; default 100)")
    serve.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body in MB (default 10)")
    serve.add_argument("--access-log", action="store_true", help="log every request (method, path, status)")
    serve.add_argument("--retrain-every", default=None, metavar="DURATION",
                       help="retrain each shop when enough new traffic arrived (30m, 1h, 1d), publishing only a "
                            "candidate that is not worse on the most recent traffic ('train watch'); default off")
    serve.add_argument("--impression-retention-days", type=float, default=90.0,
                       help="delete impressions older than this (0: keep; default 90)")
    serve.add_argument("--no-baseline", action="store_true",
                       help="a shop without a trained bundle answers 409 instead of serving the baseline stack")
    serve.add_argument("--no-baseline-embeddings", action="store_true",
                       help="keep baseline search lexical (no background embedding of the catalogue)")
    serve.set_defaults(handler=cmd_serve)

    keys = verbs.add_parser("keys", help="API keys: create, list, revoke")
    sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key; prints it once, alone on the last line")
    create.add_argument("--scope", required=True, choices=["admin", "search", "storefront"],
                        help="admin: everything; search: read one shop; storefront: read one shop and post events")
    create.add_argument("--shop", default=None, help="the shop a search or storefront key is bound to")
    create.add_argument("--name", default="", help="a note to recognise the key by")
    create.add_argument("--expires-days", type=float, default=None, help="the key stops working after this")
    add_home(create)
    create.set_defaults(handler=cmd_keys_create)
    listing = sub.add_parser("list", help="list keys (ids and scopes; never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    add_home(listing)
    listing.set_defaults(handler=cmd_keys_list)
    revoke = sub.add_parser("revoke", help="revoke a key by its id; a running server refuses it at once")
    revoke.add_argument("id", help="the key's id (as 'keys list' shows it) or the key itself")
    add_home(revoke)
    revoke.set_defaults(handler=cmd_keys_revoke)


def _home(args: argparse.Namespace) -> Path:
    from shoprank.shops import default_home

    return Path(args.home) if args.home else default_home()


def cmd_serve(args: argparse.Namespace) -> int:
    from shoprank.rerank.shop import pinned_seed_window
    from shoprank.serving import ServingConfig, run

    home = _home(args)
    try:
        pinned = pinned_seed_window()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if pinned is not None:
        print(f"randomised answers repeat: the seed window is pinned to {pinned} ($SHOPRANK_SEED_WINDOW)")
    if args.open_access:
        print("WARNING: --open: every request is answered without a key, writes included. Local demos only.")
    try:
        config = ServingConfig(workers=args.workers, watch_seconds=args.watch, sync_seconds=args.sync,
                               max_in_flight=args.max_in_flight,
                               engine_concurrency=args.engine_concurrency, engine_queue_ms=args.engine_queue_ms,
                               max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                               impression_retention_days=args.impression_retention_days,
                               baseline=not args.no_baseline, baseline_embeddings=not args.no_baseline_embeddings)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.retrain_every:
        import threading

        from shoprank.cli.learn_cmds import start_retraining
        from shoprank.retrain import parse_duration

        try:
            every = parse_duration(args.retrain_every)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        start_retraining(home, every, threading.Event())
        print(f"retraining every {args.retrain_every} when enough new traffic arrived (log: SHOP/runs/retrain.jsonl)")
    from shoprank.store import backend_for

    processes = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(f"serving {home} ({backend_for(home).describe()}{processes}) at http://{args.host}:{args.port}/  "
          "(API docs: /docs)", flush=True)
    run(home, args.host, args.port, args.open_access, config=config, access_log=args.access_log)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from shoprank.keys import KeyRequestError, KeyStore

    expires = args.expires_days * 86_400 if args.expires_days is not None else None
    try:
        key, record = KeyStore(_home(args)).create(args.scope, args.shop, name=args.name, expires_in=expires)
    except KeyRequestError as exc:
        raise CommandError(str(exc)) from None
    where = f" for shop '{record.shop}'" if record.shop else " for every shop"
    print(f"created {record.scope} key {record.id}{where}; it is shown only now, store it safely:")
    print(key)
    return 0


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def cmd_keys_list(args: argparse.Namespace) -> int:
    import json

    from shoprank.keys import KeyStore

    keys = KeyStore(_home(args)).list_keys()
    if args.json:
        print(json.dumps([k.public() for k in keys], indent=2))
        return 0
    if not keys:
        print("no keys; create one with 'shoprank keys create --scope admin'")
        return 0
    print(f"{'id':9} {'scope':11} {'shop':16} {'created':17} {'expires':17} {'state':8} name")
    for k in keys:
        state = "revoked" if k.revoked_at else "expired" if k.expired() else "active"
        print(f"{k.id:9} {k.scope:11} {k.shop or '*':16} {_when(k.created_at):17} {_when(k.expires_at):17} "
              f"{state:8} {k.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from shoprank.keys import KeyRequestError, KeyStore

    try:
        record = KeyStore(_home(args)).revoke(args.id)
    except KeyRequestError as exc:
        raise CommandError(str(exc)) from None
    print(f"revoked key {record.id} ({record.scope}{', shop ' + record.shop if record.shop else ''})")
    return 0
