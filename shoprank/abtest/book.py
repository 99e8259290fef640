"""A shop's experiments, kept in its store (setting ``experiments``), so a running one survives a restart and
every replica sees the same ones. At most one experiment runs per surface."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import replace

from shoprank.abtest.config import Experiment
from shoprank.store.base import Store

SETTING_KEY = "experiments"
_LOCK = threading.Lock()


class ExperimentConflict(Exception):
    """The definition clashes with a stored experiment (``other`` names it)."""

    def __init__(self, message: str, other: str) -> None:
        super().__init__(message)
        self.other = other


def load_experiments(store: Store) -> dict[str, Experiment]:
    """Every stored experiment by name, in the order created."""
    raw = store.get_setting(SETTING_KEY, {}) or {}
    return {name: Experiment.from_dict(spec) for name, spec in raw.items()}


def _save(store: Store, experiments: dict[str, Experiment]) -> None:
    store.set_setting(SETTING_KEY, {name: e.to_dict() for name, e in experiments.items()})


def start_experiment(store: Store, experiment: Experiment, now: float | None = None) -> tuple[Experiment, bool]:
    """Store and start ``experiment``; returns it (salted, timed) and whether it is new. The same definition
    again is a no-op; a different one under a stored name, or a second running one on a surface, is refused."""
    with _LOCK:
        stored = load_experiments(store)
        old = stored.get(experiment.name)
        if old is not None:
            same = replace(old, state="running", salt="", created_at=0.0, stopped_at=None) == experiment
            if same and old.running:
                return old, False
            raise ExperimentConflict(f"an experiment named '{experiment.name}' exists ({old.state}) with another "
                                     "definition; its report stays readable: choose another name", experiment.name)
        for other in stored.values():
            if other.running and other.surface == experiment.surface:
                raise ExperimentConflict(
                    f"experiment '{other.name}' is running on {other.surface} already; stop it first "
                    f"(POST /shops/{{shop}}/experiments/{other.name}/stop)", other.name)
        started = replace(experiment, state="running", salt=secrets.token_hex(8),
                          created_at=time.time() if now is None else now)
        stored[started.name] = started
        _save(store, stored)
        return started, True


def stop_experiment(store: Store, name: str, now: float | None = None) -> Experiment:
    """Stop ``name`` (answers stop carrying its variants; its report stays). KeyError when there is none."""
    with _LOCK:
        stored = load_experiments(store)
        if name not in stored:
            raise KeyError(name)
        old = stored[name]
        if not old.running:
            return old
        stored[name] = replace(old, state="stopped", stopped_at=time.time() if now is None else now)
        _save(store, stored)
        return stored[name]


def running_on(store: Store, surface: str) -> Experiment | None:
    return next((e for e in load_experiments(store).values() if e.running and e.surface == surface), None)
