"""``--workers N``: the heavy batch work of a command on Ray (a local cluster, or ``SHOPRANK_RAY``'s)."""

from __future__ import annotations

import argparse
from typing import Any


def add_workers(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help=f"{what} on N Ray workers: a local Ray cluster unless SHOPRANK_RAY names one "
                             "(ray://host:10001 or auto); default 0: in this process")
    parser.add_argument("--ray-retries", type=int, default=0, metavar="N",
                        help="with --workers: restart a training whose Ray worker died up to N times (default 0)")


def ray_config(args: argparse.Namespace) -> Any:
    """The command's :class:`~shoprank.cluster.RayConfig`, or None without ``--workers``."""
    from shoprank.cli.main import CommandError

    if not getattr(args, "workers", 0):
        return None
    if args.workers < 0:
        raise CommandError(f"--workers must be 1 or more, got {args.workers}")
    from shoprank.cluster import RayConfig

    try:
        return RayConfig(workers=args.workers, retries=args.ray_retries)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
