"""``shoprank models list|prune``: a shop's published bundles (which one serves, sizes) and removing old ones
(``shoprank.retention``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError, add_verb, existing_shop

KINDS = ("search", "recommend")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("models", help="a shop's published models: list them, remove old ones",
                                   description="a shop's published bundles, by kind, oldest first")
    verbs = parser.add_subparsers(dest="models_verb", metavar="WHAT", required=True)
    listing = add_verb(verbs, "list", "each bundle: version, when published, size, serving or not", cmd_list)
    listing.add_argument("--json", action="store_true", help="print JSON")
    prune = add_verb(verbs, "prune", "remove all but the newest trained and baseline bundles of each kind (never "
                     "the serving one or one an experiment names)", cmd_prune)
    prune.add_argument("--keep", type=int, default=None, metavar="N",
                       help="trained bundles of each kind to keep (default 5)")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rows(shop: Any) -> list[dict[str, Any]]:
    from shoprank.bundles import latest_version
    from shoprank.retention import created, is_baseline, protected, versions_by_age

    rows = []
    for kind in KINDS:
        latest = latest_version(shop.models_path, kind)
        pinned = protected(shop, kind) - {latest}
        for version in versions_by_age(shop, kind):
            rows.append({"kind": kind, "version": version, "baseline": is_baseline(version),
                         "published": created(shop, kind, version), "bytes": _size(shop.models_path / kind / version),
                         "serving": version == latest, "experiment": version in pinned})
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    rows = _rows(existing_shop(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no published models")
        return 0
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["published"])) if row["published"] else "?"
        marks = ", ".join(m for m, on in (("serving", row["serving"]), ("in an experiment", row["experiment"])) if on)
        print(f"{row['kind']:<10} {row['version']:<38} {when} UTC {row['bytes'] / 1e6:>9.1f} MB"
              + (f"  ({marks})" if marks else ""))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from shoprank.retention import KEEP_TRAINED, remove, surplus

    shop = existing_shop(args)
    keep = KEEP_TRAINED if args.keep is None else args.keep
    if keep < 1:
        raise CommandError(f"--keep: keep at least 1 trained bundle of each kind, got {keep}")
    gone = {kind: surplus(shop, kind, keep_trained=keep) for kind in KINDS}
    freed = sum(_size(shop.models_path / kind / v) for kind, versions in gone.items() for v in versions) / 1e6
    verb = "would remove" if args.dry_run else "removed"
    for kind, versions in gone.items():
        if not args.dry_run:
            remove(shop, kind, versions)
        for version in versions:
            print(f"{verb} {kind} {version}")
    count = sum(len(v) for v in gone.values())
    print(f"{verb} {count} bundles, {freed:.1f} MB" + ("" if count else " (nothing older than what is kept)"))
    return 0
