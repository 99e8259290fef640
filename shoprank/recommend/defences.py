"""Defences against shilling: events dropped from the log before the recommender learns from it.

Four filters, applied in this order to the time-ordered log; each reports what it removed:

* ``dedup``: a repeated (user, item, event type) counts once; the first is kept.
* ``rate_limit``: at most ``rate_cap`` events per user in any ``rate_window_s`` seconds
  (sliding window over the events kept); the rest are dropped.
* ``new_accounts`` (new-account dampening): an account is *new* when its first event lies in
  the log's last ``recent_window_s`` seconds (so its whole history does). New accounts are
  grouped by the ``burst_bucket_s`` bucket of their first event; a bucket holding at least
  ``burst_min_accounts`` of them and more than ``burst_ratio`` x the median number of accounts
  created per bucket before the recent window is a burst, and its accounts are left out of
  training (sequence model, co-visitation, popularity). Their own history is still read at
  serving time, so they still get recommendations; once older than the window they count again.
* ``item_velocity`` (burst detection on item velocity): for each item, the events from new
  accounts in the recent window against the item's own rate before it (events per day, plus
  ``velocity_prior_per_day``). An item with at least ``velocity_min_events`` such events and
  more than ``velocity_ratio`` x its expected count loses those events (older accounts' events
  on it are kept).

Time windows are in seconds of the log's own clock (``Event.timestamp``); "recent" is relative
to the newest event, so a replayed or imported log is judged as of its own end. A young log, where
fewer accounts predate the recent window than are new in it, has nothing to compare against:
there the last two defences do nothing.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from shoprank.data.records import Event

DAY = 86_400.0
STAGES = ("dedup", "rate_limit", "new_accounts", "item_velocity")


@dataclass(frozen=True)
class Defences:
    """Settings of the four filters. ``Defences()`` is the shipped default; ``stages`` picks which run."""

    rate_cap: int = 50  # events per user per window: a human rarely sustains one event every 6 s for 5 min
    rate_window_s: float = 300.0
    recent_window_s: float = DAY  # accounts whose first event is this recent are "new"
    burst_bucket_s: float = 3_600.0  # new accounts are counted per hour of their first event
    burst_min_accounts: int = 20  # fewer new accounts in one hour is never a burst
    burst_ratio: float = 5.0  # ... nor at most 5 x the median hourly sign-ups before the recent window
    baseline_window_s: float = 7 * DAY  # the history that median is taken over
    velocity_ratio: float = 10.0  # an item's new-account events above 10 x its usual count in the window ...
    velocity_min_events: int = 10  # ... and at least this many
    velocity_prior_per_day: float = 1.0  # added to an item's usual daily rate (items with no history)
    stages: tuple[str, ...] = STAGES

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown defences {sorted(unknown)}; valid: {', '.join(STAGES)}")
        for name in ("rate_cap", "burst_min_accounts", "velocity_min_events"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("rate_window_s", "recent_window_s", "burst_bucket_s", "baseline_window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.burst_ratio < 0 or self.velocity_ratio < 0 or self.velocity_prior_per_day < 0:
            raise ValueError("burst_ratio, velocity_ratio and velocity_prior_per_day must be >= 0")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "stages": list(self.stages)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Defences:
        return cls(**{**data, "stages": tuple(data.get("stages", STAGES))})  # type: ignore[arg-type]


DEFAULT = Defences()  # what ``train recommend`` applies unless told ``--no-defences``


@dataclass
class Removed:
    """What one defence dropped: event count, and the distinct users and items those events touched."""

    events: int = 0
    users: int = 0
    items: int = 0
    flagged: list[str] = field(default_factory=list)  # items flagged by item_velocity (first 20)

    @classmethod
    def of(cls, dropped: Sequence[Event], flagged: Sequence[str] = ()) -> Removed:
        return cls(len(dropped), len({e.user_id for e in dropped}), len({e.item_id for e in dropped}),
                   list(flagged)[:20])


@dataclass
class DefenceReport:
    events_in: int
    events_out: int
    removed: dict[str, Removed]

    def to_dict(self) -> dict[str, object]:
        return {"events_in": self.events_in, "events_out": self.events_out,
                "removed": {k: asdict(v) for k, v in self.removed.items()}}


def dedup(events: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    """(kept, dropped): the first of each (user, item, type)."""
    seen: set[tuple[str, str, str]] = set()
    kept, dropped = [], []
    for e in events:
        key = (e.user_id, e.item_id, e.type)
        (dropped if key in seen else kept).append(e)
        seen.add(key)
    return kept, dropped


def rate_limit(events: Sequence[Event], cap: int, window_s: float) -> tuple[list[Event], list[Event]]:
    """(kept, dropped): an event is dropped when the user already has ``cap`` kept events in the last ``window_s``."""
    recent: dict[str, deque[float]] = defaultdict(deque)
    kept, dropped = [], []
    for e in events:
        times = recent[e.user_id]
        while times and times[0] <= e.timestamp - window_s:
            times.popleft()
        if len(times) >= cap:
            dropped.append(e)
        else:
            times.append(e.timestamp)
            kept.append(e)
    return kept, dropped


def new_accounts(events: Sequence[Event], config: Defences) -> set[str]:
    """Users whose first event lies in the log's last ``recent_window_s``; none in a young log (no more
    accounts before the window than in it)."""
    if not events:
        return set()
    since = max(e.timestamp for e in events) - config.recent_window_s
    first: dict[str, float] = {}
    for e in events:
        first.setdefault(e.user_id, e.timestamp)
    new = {u for u, t in first.items() if t >= since}
    return new if len(first) - len(new) > len(new) else set()


def burst_accounts(events: Sequence[Event], config: Defences) -> set[str]:
    """New accounts created in a burst: their hour holds >= ``burst_min_accounts`` new accounts and more than
    ``burst_ratio`` x the median sign-ups per hour over the ``baseline_window_s`` before the recent window."""
    if not new_accounts(events, config):
        return set()
    start, end = events[0].timestamp, max(e.timestamp for e in events)
    since = end - config.recent_window_s
    first: dict[str, float] = {}
    for e in events:
        first.setdefault(e.user_id, e.timestamp)
    bucket = config.burst_bucket_s
    base_from = max(start, since - config.baseline_window_s)
    n_base = max(1, int(np.ceil((since - base_from) / bucket)))
    base = np.zeros(n_base)
    by_bucket: dict[int, list[str]] = defaultdict(list)
    for user, t in first.items():
        if t >= since:
            by_bucket[int((t - since) // bucket)].append(user)
        elif t >= base_from:
            base[min(n_base - 1, int((t - base_from) // bucket))] += 1
    usual = float(np.median(base))
    return {u for users in by_bucket.values()
            if len(users) >= config.burst_min_accounts and len(users) > config.burst_ratio * usual for u in users}


def item_velocity(events: Sequence[Event], config: Defences, new: set[str]) -> tuple[list[Event], list[Event],
                                                                                       list[str]]:
    """(kept, dropped, flagged items): recent events from ``new`` accounts on items whose count of them is far
    above the item's own rate before the recent window."""
    if not events or not new:
        return list(events), [], []
    start, end = events[0].timestamp, max(e.timestamp for e in events)
    since = end - config.recent_window_s
    history_days = max((since - start) / DAY, config.burst_bucket_s / DAY)
    before: dict[str, int] = defaultdict(int)
    recent_new: dict[str, int] = defaultdict(int)
    for e in events:
        if e.timestamp < since:
            before[e.item_id] += 1
        elif e.user_id in new:
            recent_new[e.item_id] += 1
    window_days = config.recent_window_s / DAY
    flagged = {item for item, n in recent_new.items()
               if n >= config.velocity_min_events
               and n > config.velocity_ratio * (before[item] / history_days + config.velocity_prior_per_day)
               * window_days}
    kept, dropped = [], []
    for e in events:
        (dropped if e.item_id in flagged and e.timestamp >= since and e.user_id in new else kept).append(e)
    return kept, dropped, sorted(flagged, key=lambda i: -recent_new[i])


def apply_defences(events: Sequence[Event], config: Defences | None = None) -> tuple[list[Event], DefenceReport]:
    """The log without what the defences drop (time order kept), and a report of each defence's removals."""
    config = config or Defences()
    log = sorted(events, key=lambda e: e.timestamp)  # stable: the store's order within a timestamp is kept
    removed: dict[str, Removed] = {}
    if "dedup" in config.stages:
        log, dropped = dedup(log)
        removed["dedup"] = Removed.of(dropped)
    if "rate_limit" in config.stages:
        log, dropped = rate_limit(log, config.rate_cap, config.rate_window_s)
        removed["rate_limit"] = Removed.of(dropped)
    new = new_accounts(log, config)
    if "new_accounts" in config.stages:
        burst = burst_accounts(log, config)
        dropped = [e for e in log if e.user_id in burst]
        log = [e for e in log if e.user_id not in burst]
        removed["new_accounts"] = Removed.of(dropped)
    if "item_velocity" in config.stages:
        log, dropped, flagged = item_velocity(log, config, new)
        removed["item_velocity"] = Removed.of(dropped, flagged)
    return log, DefenceReport(len(events), len(log), removed)
