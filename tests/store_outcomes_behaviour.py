"""What every store does with an answer's facts (match count, latency, experiment arm) and outcomes: part of
the store behaviour suite, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.store_behaviour import ev, shown


class OutcomeBehaviour:
    @pytest.fixture
    def store(self, open_store):
        with open_store() as s:
            yield s

    def test_an_answers_facts_come_back_with_its_impression(self, store):
        rich = replace(shown("r1", ["a", "b"]), total=17, latency_ms=3.5, experiment="e", variant="B",
                       teams=("A", "B"))
        empty = replace(shown("r2", [], t=1), total=0)
        store.append_impressions([rich, empty, shown("r3", ["c"], t=2)])
        got = store.get_impressions(["r1", "r2", "r3"])
        assert got["r1"] == rich and got["r2"] == empty
        assert (got["r3"].total, got["r3"].variant, got["r3"].teams) == (None, None, None)
        assert [i.total for i in store.iter_impressions()] == [17, 0, None]

    def test_the_first_copy_of_a_request_keeps_its_facts(self, store):
        store.append_impressions([replace(shown("r1", ["a"]), variant="A", experiment="e")])
        again = store.append_impressions([replace(shown("r1", ["a"]), variant="B", experiment="e"),
                                          replace(shown("r2", ["a"]), variant="B", experiment="e"),
                                          replace(shown("r2", ["a"]), variant="A", experiment="e")])
        assert (again.stored, again.duplicates) == (1, 2)
        got = store.get_impressions(["r1", "r2"])
        assert (got["r1"].variant, got["r2"].variant) == ("A", "B")

    def test_outcomes_join_each_answer_with_what_was_done_with_it(self, store):
        store.append_impressions([replace(shown("r1", ["a", "b", "c"]), experiment="x", variant="A"),
                                  replace(shown("r2", ["d"], t=10), experiment="y", variant="B"),
                                  shown("r3", ["a"], t=20, surface="similar")])
        store.append_events([ev("e1", item="b", t=1, request_id="r1", position=1),
                             ev("e2", item="b", t=2, type_="add_to_cart", request_id="r1", position=1),
                             ev("e3", item="d", t=11, type_="purchase", request_id="r2", position=0),
                             ev("e4", item="a", t=12)])  # not attributed: belongs to no answer
        outcomes = list(store.impression_outcomes())
        assert [o.impression.request_id for o in outcomes] == ["r1", "r2", "r3"]
        assert [e[:3] for e in outcomes[0].events] == [("click", "b", 1), ("add_to_cart", "b", 1)]
        assert outcomes[0].clicked_positions() == [1] and outcomes[0].did("add_to_cart")
        assert outcomes[1].count("purchase") == 1 and outcomes[2].events == ()
        assert [o.impression.request_id for o in store.impression_outcomes(experiment="x")] == ["r1"]
        assert [o.impression.request_id for o in store.impression_outcomes(surfaces=["similar"])] == ["r3"]
        later = list(store.impression_outcomes(since=shown("r", [], t=5).timestamp))
        assert [(o.impression.request_id, len(o.events)) for o in later] == [("r2", 1), ("r3", 0)]

    def test_retention_and_user_deletion_take_the_facts_too(self, store):
        store.append_impressions([replace(shown("r1", ["a"]), variant="A", experiment="e"),
                                  replace(shown("r2", ["a"], t=10, user="u2"), variant="B", experiment="e")])
        assert store.delete_impressions_before(shown("r", [], t=5).timestamp) == 1
        assert store.delete_user("u2")["impressions"] == 1
        store.append_impressions([shown("r1", ["a"]), shown("r2", ["a"])])  # the ids again, without facts
        assert {i.variant for i in store.get_impressions(["r1", "r2"]).values()} == {None}
