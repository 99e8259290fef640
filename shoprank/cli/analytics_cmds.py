"""``shoprank analytics --shop S``: the shop's search analytics as a table (``--json``: the API's answer)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shoprank.cli.main import CommandError, add_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("analytics", help="a shop's search analytics: top and zero-result queries, "
                                   "click-through by position, conversion by surface, latency",
                                   description="a shop's search analytics over a period")
    add_shop(parser)
    parser.add_argument("--days", type=float, default=30.0, help="the last N days (default 30)")
    parser.add_argument("--top", type=int, default=10, help="entries per query list (default 10)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (as the API answers it)")
    parser.set_defaults(handler=cmd_analytics)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def render(report: dict[str, Any]) -> str:
    """The report as plain-text tables."""
    lat = report["latency_ms"]
    lines = [f"searches {report['searches']}, distinct queries {report['distinct_queries']}, zero-result "
             f"{report['zero_result_searches']} ({_pct(report['zero_result_rate'])}), latency p50/p90/p99 "
             + ("-" if lat["p50"] is None else f"{lat['p50']:.1f}/{lat['p90']:.1f}/{lat['p99']:.1f} ms"), ""]
    lines.append(f"{'top query':<32} {'searches':>8} {'ctr':>7} {'conv.':>7}")
    lines += [f"{q['query'][:32]:<32} {q['count']:>8} {_pct(q['ctr']):>7} {_pct(q['conversion']):>7}"
              for q in report["top_queries"]] or ["(none)"]
    lines += ["", f"{'zero-result query':<32} {'searches':>8}"]
    lines += [f"{q['query'][:32]:<32} {q['count']:>8}" for q in report["zero_result_queries"]] or ["(none)"]
    if report["low_result_queries"]:
        lines += ["", f"{'low-result query':<32} {'searches':>8} {'results':>7}"]
        lines += [f"{q['query'][:32]:<32} {q['count']:>8} {q['results']:>7}" for q in report["low_result_queries"]]
    lines += ["", f"{'position':>8} {'shown':>8} {'clicks':>7} {'ctr':>7}"]
    lines += [f"{p['position'] + 1:>8} {p['impressions']:>8} {p['clicks']:>7} {_pct(p['ctr']):>7}"
              for p in report["ctr_by_position"]] or ["(no impressions)"]
    lines += ["", f"{'surface':<16} {'answers':>8} {'ctr':>7} {'cart':>7} {'purchase':>8}"]
    lines += [f"{name:<16} {s['impressions']:>8} {_pct(s['ctr']):>7} {_pct(s['add_to_cart_rate']):>7} "
              f"{_pct(s['purchase_rate']):>8}" for name, s in report["surfaces"].items()]
    return "\n".join(lines)


def cmd_analytics(args: argparse.Namespace) -> int:
    from shoprank.analytics import AnalyticsConfig, shop_analytics
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop {args.shop!r} does not exist in {shop.home}")
    if args.days <= 0:
        raise CommandError("--days must be more than 0")
    with shop.store(create=False) as store:
        report = shop_analytics(store, days=args.days, config=AnalyticsConfig(top=args.top))
    if args.json:
        print(json.dumps({"shop": args.shop, **report}, ensure_ascii=False, indent=2))
    else:
        print(f"shop '{args.shop}', last {args.days:g} days")
        print(render(report))
    return 0
