"""Recommendations that make sense, with known answers: bought-together from baskets (a session, or purchases
close in time) with a minimum support of different users and the confidence shown; trending from the training
period's own last days; reasons naming the strongest event."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.data.records import Event
from shoprank.recommend.interactions import TYPE_INDEX
from shoprank.recommend.item2item import basket_pairs, baskets
from shoprank.recommend.service import strongest_event

T0 = 1_700_000_000.0
INDEX = {f"p{n}": n for n in range(1, 7)}


def buy(user: str, item: str, t: float, session: str | None = None, type_: str = "purchase") -> Event:
    return Event(f"{user}-{item}-{t}", user, item, type_, T0 + t, session_id=session)


def test_baskets_are_sessions_or_purchases_close_in_time() -> None:
    events = [buy("a", "p1", 0), buy("a", "p2", 600), buy("a", "p3", 600 + 3 * 3600),  # a gap: a new basket
              buy("b", "p1", 0, "s1"), buy("b", "p4", 5 * 3600, "s1"),  # one session, however long
              buy("b", "p5", 10, "s2"), buy("c", "p6", 0, type_="add_to_cart")]  # carts are not purchases
    found = sorted(baskets(events, INDEX))
    assert found == [("a", [1, 2]), ("a", [3]), ("b", [1, 4]), ("b", [5])]


def test_one_users_habit_never_makes_a_pair() -> None:
    one_user = [buy("a", item, day * 86_400 + n) for day in range(5) for n, item in enumerate(("p1", "p2"))]
    table, counts = basket_pairs(one_user, INDEX, 6)
    assert counts["baskets"] == 5 and counts["pairs"] == 0 and table.row(1)[0].size == 0
    two_users = one_user + [buy("b", "p1", 0), buy("b", "p2", 1)]
    table, _ = basket_pairs(two_users, INDEX, 6)
    idx, confidence = table.row(1)
    assert idx.tolist() == [2] and confidence.tolist() == [1.0] and table.row_support(1).tolist() == [6.0]


def test_the_reason_names_the_strongest_event() -> None:
    items = np.array([3, 5, 3, 3])
    types = np.array([TYPE_INDEX["view"], TYPE_INDEX["purchase"], TYPE_INDEX["purchase"], TYPE_INDEX["click"]])
    assert strongest_event(items, types, 3) == "purchase"  # clicked last, bought before: "you bought"
    assert strongest_event(items[[0, 3]], types[[0, 3]], 3) == "click"


def test_training_events_leave_out_the_held_out_targets() -> None:
    from shoprank.recommend.interactions import Catalogue
    from shoprank.recommend.pipeline import log_of, popularity, training_events

    catalogue = Catalogue.from_products([])
    for n in range(1, 7):
        catalogue.add(f"p{n}")
    events = []
    for u in range(4):  # each user: p1, p2 early, then p5 (validation) and p6 (test) a year later
        events += [buy(f"u{u}", "p1", u), buy(f"u{u}", "p2", 10 + u), buy(f"u{u}", "p5", 3e7 + u),
                   buy(f"u{u}", "p6", 3.1e7 + u)]
    events.sort(key=lambda e: e.timestamp)
    log = log_of(catalogue, events)
    split = log.split()
    train = training_events(log, split)
    assert {e.item_id for e in train} == {"p1", "p2"} and len(train) == 8
    pop, trend, until = popularity(log, 6, split.train, train)
    assert until == T0 + 13  # the training log's own last event, not the wall clock nor the test events
    assert trend[[5, 6]].tolist() == [0.0, 0.0] and trend[1] > 0 and pop[6] == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from shoprank.recommend.pipeline import train_recommender
    from shoprank.shops import Shop

    shop = Shop("baskets", tmp_path_factory.mktemp("home"))
    events = []
    for u in range(30):  # everyone views p1..p4; users buy p1 with p2 in one session, or p3 alone
        events += [buy(f"u{u}", f"p{n}", u * 1000 + n, type_="view") for n in range(1, 5)]
        if u % 3:
            events += [buy(f"u{u}", "p1", u * 1000 + 10, f"s{u}"), buy(f"u{u}", "p2", u * 1000 + 20, f"s{u}")]
        else:
            events += [buy(f"u{u}", "p3", u * 1000 + 10)]
        events += [buy(f"u{u}", "p5", 1e6 + u, type_="view"), buy(f"u{u}", "p6", 1e6 + 50 + u, type_="view")]
    from shoprank.data.records import Product

    with shop.store() as store:
        store.upsert_products([Product(f"p{n}", f"Product {n}") for n in range(1, 7)])
        store.append_events(events)
    train_recommender(shop, "quick", encoder="hash:32", threads=1, progress=False, d_model=16, n_layers=1,
                      n_heads=1, epochs=2, batch_size=16, patience=2, eval_users=0)
    return shop


def test_served_bought_together_shows_support_and_confidence(trained) -> None:  # noqa: ANN001
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    together = rec.bought_together("p1", k=5)
    assert [r.id for r in together] == ["p2"]  # p3 and the viewed items are never in p1's baskets
    assert together[0].parts == {"confidence": 1.0, "support": 20.0}
    assert together[0].reasons == ["bought with Product 1 in 20 of 20 baskets (100%)"]
    assert rec.bought_together("p3", k=5) == []  # bought alone: no partner


def test_served_trending_is_dated_by_the_training_log(trained) -> None:  # noqa: ANN001
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    assert rec.art.trending[rec.catalogue.index["p6"]] == 0  # the held-out last events are not trending
    top = rec.recommend("stranger", k=3)
    days = rec.art.params["trend_days"]  # chosen on validation targets (tests/test_trend_window.py)
    window = "popular up to " if days is None else f"popular in the {days:g} days to "
    assert top[0].reasons[0].startswith(window + "2023-11-")
