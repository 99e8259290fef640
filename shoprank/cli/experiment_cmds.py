"""``shoprank experiments list|show|start|stop``: a shop's online experiments (as the HTTP API has them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError, add_verb, existing_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("experiments", help="a shop's A/B and interleaving experiments",
                                   description="start, read and stop a shop's online experiments")
    verbs = parser.add_subparsers(dest="experiments_verb", metavar="WHAT", required=True)
    add_verb(verbs, "list", "every experiment with its state and winner", cmd_list)
    show = add_verb(verbs, "show", "an experiment's report", cmd_show)
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="the report as JSON (as the API answers it)")
    start = add_verb(verbs, "start", "start an experiment from a JSON definition (docs/experiments.md)", cmd_start)
    start.add_argument("name")
    given = start.add_mutually_exclusive_group(required=True)
    given.add_argument("--file", type=Path, help="a JSON file holding the definition")
    given.add_argument("--definition", help="the definition as a JSON string")
    stop = add_verb(verbs, "stop", "stop an experiment (its report stays readable)", cmd_stop)
    stop.add_argument("name")


_shop = existing_shop


def render(report: dict[str, Any]) -> str:
    """An experiment's report as a few lines of text."""
    lines = [f"{report['name']}: {report['kind']} on {report['surface']}, {report['state']}; "
             f"winner: {report['winner'] or 'none yet'} ({report['test']}, alpha {report['alpha']:g})"]
    if report["kind"] == "ab":
        lines.append(f"{'variant':<12} {'answers':>8} {'clicks':>7} {'ctr':>7} {'95% interval':>17} {'cart':>7} "
                     f"{'purchase':>8}")
        for name, v in report["variants"].items():
            low, high = v["ctr_interval"]
            lines.append(f"{name:<12} {v['impressions']:>8} {v['clicks']:>7} {v['ctr']:>7.2%} "
                         f"{f'{low:.2%}-{high:.2%}':>17} {v['add_to_cart_rate']:>7.2%} {v['purchase_rate']:>8.2%}")
        for c in report["comparisons"]:
            lines.append(f"{c['variant']} - {c['against']}: {c['difference']:+.2%} "
                         f"[{c['interval'][0]:+.2%}, {c['interval'][1]:+.2%}], p {c['p_value']:.3g} "
                         f"(fixed horizon), always-valid p {c['always_valid_p']:.3g}, sample still needed "
                         f"{'unknown' if c['sample_needed'] is None else c['sample_needed']} per variant")
    else:
        for name, v in report["variants"].items():
            lines.append(f"{name:<12} preferred in {v['preferred']} answers, {v['credited_clicks']} credited clicks")
        lines.append(f"ties {report['ties']}, sign test p {report['p_value']:.3g}, always-valid p "
                     f"{report['always_valid_p']:.3g}; queries preferred {report['queries']['preferred']}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    from shoprank.abtest import experiment_report, load_experiments

    with _shop(args).store(create=False) as store:
        experiments = load_experiments(store)
        if not experiments:
            print("no experiments")
        for e in experiments.values():
            report = experiment_report(store, e)
            print(f"{e.name:<24} {e.kind:<10} {e.surface:<9} {e.state:<8} winner: {report['winner'] or '-'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from shoprank.abtest import experiment_report, load_experiments

    with _shop(args).store(create=False) as store:
        experiment = load_experiments(store).get(args.name)
        if experiment is None:
            raise CommandError(f"shop {args.shop!r} has no experiment {args.name!r}")
        report = experiment_report(store, experiment)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from shoprank.abtest import ExperimentConflict, ExperimentError, parse_experiment, start_experiment
    from shoprank.bundles import list_versions

    shop = _shop(args)
    text = args.file.read_text(encoding="utf-8") if args.file else args.definition
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"the definition is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        experiment = parse_experiment(args.name, body, versions=lambda kind: list_versions(shop.models_path, kind))
        with shop.store(create=False) as store:
            started, new = start_experiment(store, experiment)
    except ExperimentError as exc:
        raise CommandError(f"{exc.field}: {exc.message}") from None
    except ExperimentConflict as exc:
        raise CommandError(str(exc)) from None
    print(f"{'started' if new else 'already running'}: {started.name} ({started.kind} on {started.surface}, "
          f"variants {', '.join(started.names)})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from shoprank.abtest import stop_experiment

    with _shop(args).store(create=False) as store:
        try:
            stop_experiment(store, args.name)
        except KeyError:
            raise CommandError(f"shop {args.shop!r} has no experiment {args.name!r}") from None
    print(f"stopped {args.name}; its report stays readable (shoprank experiments show {args.name} --shop "
          f"{args.shop})")
    return 0
