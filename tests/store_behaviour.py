"""What every store does, as one suite: each implementation's test file is a five-line class.

A store class under test provides the ``open_store`` fixture: a callable that opens (again) one and the same
empty store. Everything here goes through the :class:`~shoprank.store.Store` interface only.
"""

from __future__ import annotations

import threading
import time

import pytest

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.data.impressions import Impression
from shoprank.data.records import Review, parse_event, parse_judgment, parse_product
from shoprank.store.base import ReviewSentiment

NOW = time.time()


def ev(event_id, user="u1", item="p1", t=0.0, type_="click", **extra):
    return parse_event({"event_id": event_id, "user_id": user, "item_id": item, "type": type_,
                        "timestamp": NOW - 1000 + t, **extra})


def shown(request_id, items, *, page=1, t=0.0, surface="search", user="u1"):
    offset = (page - 1) * len(items)
    return Impression(request_id, NOW - 1000 + t, surface, tuple(items), tuple(range(offset, offset + len(items))),
                      user_id=user, query="drill", model_version="v1", page=page)


def review(review_id, product="p1", t=0.0, text="Lovely", rating=5.0):
    return Review(review_id, product, text, NOW - 1000 + t, user_id="u1", rating=rating, title="Nice", language="en")


def product(pid, title="x", **extra):
    return parse_product({"id": pid, "title": title, **extra})


class StoreBehaviour:
    @pytest.fixture
    def store(self, open_store):
        with open_store() as s:
            yield s

    def test_products_upsert_by_id(self, store):
        r1 = store.upsert_products([product("a", "one")])
        r2 = store.upsert_products([product("a", "two"), product("b")])
        assert (r1.stored, r2.stored, r2.updated) == (1, 1, 1)
        assert store.get_product("a").title == "two"
        assert store.counts()["products"] == 2

    def test_the_last_copy_in_a_batch_wins(self, store):
        result = store.upsert_products([product("a", "one"), product("a", "two")])
        assert (result.stored, result.duplicates) == (1, 1)
        assert store.get_product("a").title == "two"

    def test_products_keep_every_field(self, store):
        full = product("ß-1", "Kochmesser 20 cm „Profi“", description="Klinge", category="Küche > Messer",
                       brand="Zwilling", price=89.5, currency="EUR", attributes={"steel": "X50", "n": 3},
                       in_stock=False, language="de")
        store.upsert_products([full])
        assert store.get_products(["nope", "ß-1"]) == [None, full]
        assert list(store.iter_products()) == [full]

    def test_events_idempotent_by_event_id(self, store):
        assert store.append_events([ev("e1"), ev("e2", t=1)]).stored == 2
        again = store.append_events([ev("e1"), ev("e3", t=2)])
        assert (again.stored, again.duplicates) == (1, 1)
        assert [e.event_id for e in store.iter_events()] == ["e1", "e2", "e3"]

    def test_events_keep_optional_fields_and_filter_by_type(self, store):
        rich = ev("e1", type_="purchase", query="drill", position=3, session_id="s9", value=2.5)
        store.append_events([rich, ev("e2", t=1)])
        assert list(store.iter_events(["purchase"])) == [rich]
        assert [e.event_id for e in store.iter_events(["click", "purchase"])] == ["e1", "e2"]

    def test_a_large_batch_is_stored_once(self, store):
        events = [ev(f"e{i}", user=f"u{i % 7}", t=i) for i in range(1500)]
        assert store.append_events(events).stored == 1500
        again = store.append_events(events[:700] + [ev("new", t=5000)])
        assert (again.stored, again.duplicates) == (1, 700)
        assert [e.event_id for e in store.iter_events()][:3] == ["e0", "e1", "e2"]
        products = [product(f"p{i}", f"t{i}") for i in range(1200)]
        assert store.upsert_products(products).stored == 1200
        assert store.upsert_products(products[:600]).updated == 600
        assert store.counts()["products"] == 1200

    def test_events_in_time_order(self, store):
        store.append_events([ev("late", t=5), ev("early", t=1), ev("tie-a", t=3), ev("tie-b", t=3)])
        assert [e.event_id for e in store.iter_events()] == ["early", "tie-a", "tie-b", "late"]

    def test_user_events_are_the_latest_oldest_first(self, store):
        store.append_events([ev(f"e{i}", t=i) for i in range(10)] + [ev("other", user="u2")])
        assert [e.event_id for e in store.user_events("u1", limit=3)] == ["e7", "e8", "e9"]
        assert store.user_events("nobody") == []

    def test_deleting_a_user_removes_their_events_only(self, store):
        store.append_impressions([shown("r1", ["p1"], user="gone"), shown("r2", ["p1"], user="kept")])
        store.append_events([ev("e1", user="gone", request_id="r1"), ev("e2", user="kept"), ev("e3", user="gone", t=1)])
        assert store.delete_user("gone") == {"events": 2, "impressions": 1}
        assert store.user_events("gone") == [] and [e.event_id for e in store.iter_events()] == ["e2"]
        assert list(store.get_impressions(["r1", "r2"])) == ["r2"]
        assert store.recent_users() == ["kept"] and store.delete_user("nobody") == {"events": 0, "impressions": 0}
        assert store.append_events([ev("e1", user="gone")]).stored == 1  # a new event of theirs is new data
        # nothing of the old event survives: not its link to the answer it came from either
        assert [e.request_id for e in store.iter_events() if e.event_id == "e1"] == [None]

    def test_impressions_round_trip_duplicates_range_and_retention(self, store):
        first = [shown("r1", ["a", "b"]), shown("r2", ["c"], page=3, t=10, surface="recommendations"),
                 shown("r1", ["z"])]
        result = store.append_impressions(first)
        assert (result.stored, result.duplicates) == (2, 1)
        assert store.append_impressions([shown("r2", ["q"])]).duplicates == 1  # a retried request id: kept once
        got = store.get_impressions(["r1", "r2", "nope"])
        assert set(got) == {"r1", "r2"} and got["r1"] == first[0] and got["r2"].positions == (2,)
        assert [i.request_id for i in store.iter_impressions()] == ["r1", "r2"]
        assert [i.request_id for i in store.iter_impressions(since=NOW - 995)] == ["r2"]
        assert [i.request_id for i in store.iter_impressions(until=NOW - 995)] == ["r1"]
        assert [i.request_id for i in store.iter_impressions(surfaces=["search"])] == ["r1"]
        assert store.counts()["impressions"] == 2
        assert store.delete_impressions_before(NOW - 995) == 1
        assert list(store.get_impressions(["r1", "r2"])) == ["r2"]
        many = [shown(f"m{i}", ["a"], t=100 + i) for i in range(600)]  # a large batch travels another way
        assert store.append_impressions(many + many[:5]).stored == 600

    def test_an_attributed_event_keeps_its_request_id(self, store):
        store.append_impressions([shown("r1", ["p1"])])
        store.append_events([ev("e1", request_id="r1"), ev("e2", t=1)])
        assert [e.request_id for e in store.iter_events()] == ["r1", None]
        assert [e.request_id for e in store.user_events("u1")] == ["r1", None]

    def test_the_faq_is_replaced_or_merged_and_conversations_kept_once(self, store):
        assert store.faq_entries() == []
        first = store.put_faq([FaqEntry("a", "A", ("q",)), FaqEntry("b", "B", ("r", "r2"), search=True)])
        assert (first.stored, first.updated, first.removed) == (2, 0, 0)
        merged = store.put_faq([FaqEntry("c", "C", ("s",)), FaqEntry("a", "A2", ("q",))], replace=False)
        assert (merged.stored, merged.updated) == (1, 1)
        assert [(e.id, e.answer) for e in store.faq_entries()] == [("a", "A2"), ("b", "B"), ("c", "C")]
        assert store.faq_entries(["c", "nope", "b"]) == [FaqEntry("c", "C", ("s",)),
                                                         FaqEntry("b", "B", ("r", "r2"), search=True)]
        replaced = store.put_faq([FaqEntry("b", "B", ("r",))])
        assert (replaced.stored, replaced.updated, replaced.removed) == (0, 1, 2)
        assert [e.id for e in store.faq_entries()] == ["b"]
        with pytest.raises(ValueError, match="unique"):
            store.put_faq([FaqEntry("x", "X", ("q",)), FaqEntry("x", "Y", ("q",))])
        result = store.append_conversations([Conversation("hi there", "b"), Conversation("hi there", "b"),
                                             Conversation("weather?", None)])
        assert (result.stored, result.duplicates) == (2, 1)
        assert store.append_conversations([Conversation("weather?", None)]).duplicates == 1
        assert store.conversations() == [Conversation("hi there", "b"), Conversation("weather?", None)]

    def test_reviews_upsert_flag_unknown_products_and_rescore_edits(self, store):
        store.upsert_products([product("p1")])
        first = store.upsert_reviews([review("a", t=10), review("b", product="ghost", t=30), review("a", t=20)])
        assert (first.stored, first.updated, first.duplicates, first.flagged) == (2, 0, 1, 1)
        assert store.unknown_product_reviews() == ["b"]
        assert [r.review_id for r in store.iter_reviews()] == ["a", "b"]  # time order; the last copy of a won
        assert [r.review_id for r in store.iter_reviews(since=NOW - 975)] == ["b"]
        store.put_review_sentiment([ReviewSentiment("a", "v1", 2, 0.9, ("quality",)),
                                    ReviewSentiment("b", "v1", 0, -0.5)])
        assert store.review_sentiment("v1")["a"] == ReviewSentiment("a", "v1", 2, 0.9, ("quality",))
        assert store.review_sentiment("v2") == {}
        edited = store.upsert_reviews([review("a", text="Broke", rating=1.0)])
        assert (edited.stored, edited.updated) == (0, 1)
        assert [r.text for r in store.iter_reviews(product_id="p1")] == ["Broke"]
        assert set(store.review_sentiment("v1")) == {"b"}  # an edited review is scored again

    def test_alerts_are_unique_by_scope_and_time(self, store):
        alert = {"scope": "product:p1", "at": "2026-01-01T00:00:00Z", "at_epoch": 1767225600.0, "share": 0.5}
        later = {**alert, "at_epoch": 1767229200.0}
        assert store.add_alerts([alert, later]) == [alert, later]
        assert store.add_alerts([alert]) == []
        store.mark_alert("product:p1", 1767225600.0, False, 3, "HTTP 500")
        listed = store.list_alerts()
        assert [a["at_epoch"] for a in listed] == [1767229200.0, 1767225600.0]
        assert (listed[1]["delivered"], listed[1]["attempts"], listed[1]["delivery_error"]) == (False, 3, "HTTP 500")
        assert store.list_alerts(limit=1, scope="product:p1") == listed[:1] and store.list_alerts(scope="x") == []

    def test_cheap_counts(self, store):
        store.upsert_products([product("a"), product("b")])
        store.append_events([ev("e1")])
        assert (store.product_count(), store.event_count()) == (2, 1)

    def test_recent_users_newest_first(self, store):
        store.append_events([ev("e1", user="a"), ev("e2", user="b"), ev("e3", user="a"), ev("e4", user="c")])
        assert store.recent_users(10) == ["c", "a", "b"]
        assert store.recent_users(2) == ["c", "a"]

    def test_changes_since_version(self, store):
        assert store.catalog_version() == 0
        store.upsert_products([product("a", "one")])
        v = store.catalog_version()
        store.upsert_products([product("b", "two")])
        store.delete_products(["a"])
        changed, deleted, current = store.products_changed_since(v)
        assert [p.id for p in changed] == ["b"] and deleted == ["a"] and current == v + 2
        assert store.products_changed_since(current) == ([], [], current)

    def test_a_deleted_product_can_come_back(self, store):
        store.upsert_products([product("a")])
        assert store.delete_products(["a", "a", "missing"]) == 1
        v = store.catalog_version()
        store.upsert_products([product("a", "back")])
        changed, deleted, _ = store.products_changed_since(v)
        assert [p.title for p in changed] == ["back"] and deleted == []
        assert store.get_product("a").title == "back"

    def test_the_change_feed_misses_nothing_under_concurrent_writers(self, store):
        seen: dict[str, str] = {}
        version = 0

        def writer(w: int) -> None:
            for i in range(15):
                store.upsert_products([product(f"w{w}-{i}", f"v{i}")])

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            changed, _, version = store.products_changed_since(version)
            seen.update({p.id: p.title for p in changed})
        for t in threads:
            t.join()
        changed, _, version = store.products_changed_since(version)
        seen.update({p.id: p.title for p in changed})
        assert len(seen) == 45 and version == store.catalog_version() == 45

    def test_judgments_and_settings(self, store):
        store.upsert_judgments([parse_judgment({"query": "q", "product_id": "a", "grade": 1})])
        again = store.upsert_judgments([parse_judgment({"query": "q", "product_id": "a", "grade": 3}),
                                        parse_judgment({"query": "q", "product_id": "b", "grade": 0})])
        assert (again.stored, again.updated) == (1, 1)
        assert [(j.product_id, j.grade) for j in store.judgments()] == [("a", 3.0), ("b", 0.0)]
        store.set_setting("diversity", {"lambda": 0.3})
        store.set_setting("diversity", {"lambda": 0.4, "rules": [1, "x", None]})
        assert store.get_setting("diversity") == {"lambda": 0.4, "rules": [1, "x", None]}
        assert store.get_setting("missing", 7) == 7
        assert store.check_integrity() == []

    def test_search_settings_round_trip(self, open_store):
        from shoprank.search.settings import SearchSettings, load_search_settings, save_search_settings

        with open_store() as s:
            assert load_search_settings(s) == SearchSettings()
            save_search_settings(s, SearchSettings(closest_on_empty=5))
        with open_store() as s:  # another connection (another process or replica) reads what was stored
            assert load_search_settings(s).closest_on_empty == 5
            save_search_settings(s, load_search_settings(s).updated({"closest_on_empty": 0}))
            assert s.get_setting("search") == {"version": 1, "closest_on_empty": 0}

    def test_counts(self, store):
        store.upsert_products([product("a"), product("b")])
        store.append_events([ev("e1", user="u1"), ev("e2", user="u2"), ev("e3", user="u1")])
        store.upsert_judgments([parse_judgment({"query": q, "product_id": "a", "grade": 1}) for q in ("x", "y")])
        assert store.counts() == {"products": 2, "events": 3, "users": 2, "judgments": 2, "queries": 2,
                                  "impressions": 0}

    def test_empty_batches_store_nothing(self, store):
        assert store.append_events([]).stored == 0
        assert store.upsert_products([]).stored == 0
        assert store.upsert_judgments([]).stored == 0
        assert store.counts()["events"] == 0

    def test_data_survives_reopening(self, open_store):
        with open_store() as s:
            s.append_events([ev("e1")])
            s.set_setting("k", "v")
        with open_store() as s:
            assert s.counts()["events"] == 1 and s.get_setting("k") == "v"
