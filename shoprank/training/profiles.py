"""Training profiles: one set of names, one way to define and resolve them, for every trainer.

A profile names a budget, the same three for search and recommendations:

* ``demo``: the shortest run (what ``shoprank demo`` trains),
* ``quick``: a few minutes on a 2-core CPU, on a sample where the trainer samples,
* ``full``: every query or user, for the quality figures.

Each trainer keeps one table, ``{profile: {section: {setting: value}}}``; a profile may start from another
(``"base": "quick"``) and change only what differs. :func:`resolve` checks the name and merges the sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROFILE_NAMES: tuple[str, ...] = ("demo", "quick", "full")
PROFILE_HELP = ("demo: the shortest run; quick: a few minutes on a sample; full: everything, for the quality "
                "figures")

Table = Mapping[str, Mapping[str, Any]]


def check_profile(name: str) -> str:
    """``name`` if it is a profile, else a ValueError listing the valid ones."""
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown training profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    return name


def resolve(table: Table, name: str) -> dict[str, dict[str, Any]]:
    """The sections of profile ``name`` in ``table``, with those of its ``base`` profile underneath.

    >>> resolve({"quick": {"train": {"epochs": 30, "lr": 2e-3}}, "demo": {"base": "quick", "train": {"epochs": 6}},
    ...          "full": {}}, "demo")
    {'train': {'epochs': 6, 'lr': 0.002}}
    """
    check_profile(name)
    missing = [p for p in PROFILE_NAMES if p not in table]
    if missing:
        raise ValueError(f"the profile table defines no {', '.join(missing)} profile")
    seen: list[str] = []
    chain = []
    while name:
        if name in seen:
            raise ValueError(f"profile bases loop: {' -> '.join([*seen, name])}")
        seen.append(name)
        chain.append(table[name])
        name = table[name].get("base", "")
    merged: dict[str, dict[str, Any]] = {}
    for entry in reversed(chain):
        for section, values in entry.items():
            if section != "base":
                merged[section] = {**merged.get(section, {}), **values}
    return merged
