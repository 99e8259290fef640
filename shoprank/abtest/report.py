"""An experiment's report, read from the answers it served (their impressions carry experiment and variant)
and the clicks, carts and purchases attributed to them.

A/B: per variant answers, clicks, click-through (share of answers with a click) with its 95% Wilson interval,
add-to-cart and purchase rates; each variant against the first (the control): the difference with its 95%
interval, a fixed-horizon p-value (for reading), the always-valid mSPRT p-value that decides, and the answers
per variant still needed. ``winner``: a variant only once the sequential test rejects at ``alpha`` (split
over the comparisons when there are more than two variants), else None.

Interleaving: clicks credited to the team that contributed the clicked result; per answer and per query, the
variant whose results got more clicks; ``winner`` by the sign test over answers in its sequential
(always-valid) form; the fixed-horizon sign tests over answers and over queries are shown beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from shoprank.abtest.config import Experiment
from shoprank.abtest.interleave import credit, preference
from shoprank.abtest.stats import difference, msprt_p, sample_needed, sequential_sign_p, sign_test, wilson
from shoprank.data.outcomes import Outcome
from shoprank.store.base import Store


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def ab_report(experiment: Experiment, outcomes: Iterable[Outcome]) -> dict[str, Any]:
    names = experiment.names
    index = {n: i for i, n in enumerate(names)}
    arms: list[int] = []
    clicked: list[int] = []
    counts = {n: defaultdict(int) for n in names}
    for outcome in outcomes:
        variant = outcome.impression.variant
        if variant not in index:
            continue
        c = counts[variant]
        c["answers"] += 1
        c["clicks"] += outcome.count("click")
        c["clicked"] += outcome.did("click")
        c["carted"] += outcome.did("add_to_cart")
        c["purchased"] += outcome.did("purchase")
        arms.append(index[variant])
        clicked.append(int(outcome.did("click")))
    variants = {}
    for n in names:
        c = counts[n]
        low, high = wilson(c["clicked"], c["answers"])
        answers = c["answers"]
        variants[n] = {"impressions": answers, "clicks": c["clicks"],
                       "ctr": _r(c["clicked"] / answers if answers else 0.0), "ctr_interval": [_r(low), _r(high)],
                       "add_to_cart_rate": _r(c["carted"] / answers if answers else 0.0),
                       "purchase_rate": _r(c["purchased"] / answers if answers else 0.0)}
    alpha = experiment.alpha / max(1, len(names) - 1)
    arm = np.asarray(arms, dtype=np.int16)
    hit = np.asarray(clicked, dtype=np.int8)
    control = names[0]
    comparisons = []
    for n in names[1:]:
        a, b = counts[control], counts[n]
        keep = (arm == 0) | (arm == index[n])
        diff, low, high, p = difference(a["clicked"], a["answers"], b["clicked"], b["answers"])
        valid = msprt_p((arm[keep] == index[n]).astype(np.int8), hit[keep])
        comparisons.append({"variant": n, "against": control, "difference": _r(diff), "interval": [_r(low), _r(high)],
                            "p_value": _r(p), "always_valid_p": _r(valid), "significant": valid < alpha,
                            "sample_needed": 0 if valid < alpha else
                            sample_needed(a["clicked"], a["answers"], b["clicked"], b["answers"], alpha)})
    better = [c for c in comparisons if c["significant"] and c["difference"] > 0]
    if better:
        winner: str | None = max(better, key=lambda c: c["difference"])["variant"]
    elif comparisons and all(c["significant"] and c["difference"] < 0 for c in comparisons):
        winner = control
    else:
        winner = None
    pending = [c["sample_needed"] for c in comparisons if not c["significant"]]
    return {"variants": variants, "comparisons": comparisons,
            **({"difference": comparisons[0]["difference"], "interval": comparisons[0]["interval"],
                "p_value": comparisons[0]["p_value"], "always_valid_p": comparisons[0]["always_valid_p"]}
               if len(comparisons) == 1 else {}),
            "winner": winner, "test": "mSPRT (always-valid p-value, normal mixture)", "alpha": experiment.alpha,
            "sample_needed": None if winner is None and any(p is None for p in pending) else max(pending, default=0)}


def interleave_report(experiment: Experiment, outcomes: Iterable[Outcome]) -> dict[str, Any]:
    a, b = experiment.names[0], experiment.names[1]
    prefs: list[int] = []
    by_query: dict[str, int] = defaultdict(int)
    credited = {a: 0, b: 0}
    shown = {a: 0, b: 0}
    answers = 0
    for outcome in outcomes:
        imp = outcome.impression
        if imp.teams is None:
            continue
        answers += 1
        for team in imp.teams:
            shown[team] = shown.get(team, 0) + 1
        clicked = outcome.clicked_items()
        for team, n in credit(imp.teams, imp.items, clicked).items():
            credited[team] = credited.get(team, 0) + n
        pref = preference(imp.teams, imp.items, clicked, (a, b))
        prefs.append(pref)
        by_query[imp.query or imp.user_id or imp.request_id] += pref
    wins, losses = prefs.count(1), prefs.count(-1)
    q_wins = sum(1 for v in by_query.values() if v > 0)
    q_losses = sum(1 for v in by_query.values() if v < 0)
    valid = sequential_sign_p(np.asarray(prefs, dtype=np.int8))
    winner = (a if wins > losses else b) if valid < experiment.alpha and wins != losses else None
    variants = {a: {"shown": shown[a], "credited_clicks": credited[a], "preferred": wins},
                b: {"shown": shown[b], "credited_clicks": credited[b], "preferred": losses}}
    return {"answers": answers, "variants": variants,
            "ties": prefs.count(0), "p_value": _r(sign_test(wins, losses)), "always_valid_p": _r(valid),
            "queries": {"preferred": {a: q_wins, b: q_losses}, "ties": len(by_query) - q_wins - q_losses,
                        "p_value": _r(sign_test(q_wins, q_losses))},
            "winner": winner, "test": "sign test (sequential: Beta(1,1) mixture, always valid)",
            "alpha": experiment.alpha}


def experiment_report(store: Store, experiment: Experiment) -> dict[str, Any]:
    """The definition, its state and the figures so far."""
    outcomes = store.impression_outcomes(experiment=experiment.name)
    figures = ab_report(experiment, outcomes) if experiment.kind == "ab" else interleave_report(experiment, outcomes)
    head = experiment.to_dict()
    head.pop("salt")
    return {**head, **figures}
