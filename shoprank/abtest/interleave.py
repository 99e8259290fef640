"""Team-draft interleaving (Radlinski, Kurup & Joachims 2008): two rankings merged into one list, each shown
item remembering the team (variant) that put it there; clicks credit that team.

Each round, the team with fewer picks so far picks next (a coin decides a tie); it adds its best-ranked item
not yet in the list. The coin is seeded per answer, so a page read again, and the pages of one list, agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence


def team_draft(a: Sequence[str], b: Sequence[str], k: int, seed: int, names: tuple[str, str] = ("A", "B")
               ) -> tuple[list[str], list[str]]:
    """The first ``k`` items of the interleaving of ``a`` and ``b`` and the team of each."""
    rng = random.Random(seed)
    items: list[str] = []
    teams: list[str] = []
    chosen: set[str] = set()
    picks = [0, 0]
    cursors = [0, 0]
    lists = (a, b)
    while len(items) < k:
        left = [any(x not in chosen for x in lists[t][cursors[t]:]) for t in (0, 1)]
        if not any(left):
            break
        if picks[0] < picks[1] or (picks[0] == picks[1] and rng.random() < 0.5):
            team = 0
        else:
            team = 1
        if not left[team]:
            team = 1 - team
        ranked = lists[team]
        while ranked[cursors[team]] in chosen:
            cursors[team] += 1
        item = ranked[cursors[team]]
        chosen.add(item)
        items.append(item)
        teams.append(names[team])
        picks[team] += 1
    return items, teams


def credit(teams: Sequence[str], items: Sequence[str], clicked: Iterable[str]) -> dict[str, int]:
    """Clicks per team: each clicked item credits the team that contributed it (items not shown: nobody)."""
    team_of = dict(zip(items, teams, strict=True))
    out: dict[str, int] = {}
    for item in dict.fromkeys(clicked):
        team = team_of.get(item)
        if team is not None:
            out[team] = out.get(team, 0) + 1
    return out


def preference(teams: Sequence[str], items: Sequence[str], clicked: Iterable[str], names: tuple[str, str]) -> int:
    """+1 when ``names[0]``'s results got more clicks in this answer, -1 when ``names[1]``'s did, 0 a tie."""
    got = credit(teams, items, clicked)
    a, b = got.get(names[0], 0), got.get(names[1], 0)
    return (a > b) - (a < b)
