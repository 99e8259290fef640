"""The trending window (the new-user list) is chosen on validation targets, not fixed: known answers."""

from __future__ import annotations

from shoprank.data.records import Event
from shoprank.recommend.interactions import Catalogue
from shoprank.recommend.pipeline import choose_trend_window, log_of, popularity, training_events

DAY = 86_400.0


def _log(recent_item: str, target: str):  # noqa: ANN202
    """20 users, 200 days: each bought 'old' twice long ago, ``recent_item`` in the last hours of their training
    view, then a validation target ``target`` and a test item."""
    catalogue = Catalogue()
    for item in ("old", "new", "x", "t"):
        catalogue.add(item, item)
    events = []
    for u in range(20):
        times = [1.0 * DAY + u, 2.0 * DAY + u, 199.9 * DAY + u, 200.0 * DAY + u, 200.1 * DAY + u]
        items = ["old", "old", recent_item, target, "t"]
        for n, (at, item) in enumerate(zip(times, items, strict=True)):
            events.append(Event(user_id=f"u{u}", item_id=item, type="purchase", timestamp=1.7e9 + at,
                                event_id=f"u{u}-{n}"))
    events.sort(key=lambda e: e.timestamp)
    return log_of(catalogue, events)


def test_the_window_that_predicts_validation_targets_wins() -> None:
    # validation targets are the long-run favourite: only the whole-log window ranks 'old' first
    log = _log("new", "old")
    split = log.split()
    days, table = choose_trend_window(log, split, training_events(log, split))
    assert days is None and [row["days"] for row in table] == [1.0, 7.0, 30.0, 90.0, None]
    assert table[-1]["valid_ndcg@10"] == 1.0
    # validation targets are what sold lately: the shortest window that ranks 'new' first
    log = _log("new", "new")
    split = log.split()
    days, table = choose_trend_window(log, split, training_events(log, split))
    assert days == 1.0 and table[0]["valid_ndcg@10"] == 1.0


def test_whole_log_window_counts_every_training_event() -> None:
    log = _log("new", "old")
    split = log.split()
    events = training_events(log, split)
    _, week, _ = popularity(log, len(log.catalogue), split.train, events, days=7.0)
    _, whole, _ = popularity(log, len(log.catalogue), split.train, events, days=None)
    old = log.catalogue.index["old"]
    assert week[old] == 0 and whole[old] > whole[log.catalogue.index["new"]] > 0
