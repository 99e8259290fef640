"""Team-draft interleaving: hand-made lists with known credit, the contract of the merge, a simulated shopper
who prefers one ranker (the report must name it), and interleaved answers through the HTTP API."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprank.abtest.config import Experiment, Variant
from shoprank.abtest.interleave import credit, preference, team_draft
from shoprank.abtest.report import interleave_report
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.keys import KeyStore
from shoprank.learning.simulate import ShopperModel
from shoprank.shops import Shop
from tests.test_analytics import client, fake_app
from tests.test_experiments_api import two_versions


def test_credit_on_hand_made_lists() -> None:
    items, teams = ["x", "y", "z", "w"], ["A", "B", "A", "B"]
    assert credit(teams, items, ["y", "w", "x", "y", "not-shown"]) == {"B": 2, "A": 1}
    assert preference(teams, items, ["y", "w", "x"], ("A", "B")) == -1
    assert preference(teams, items, ["x", "y"], ("A", "B")) == 0
    assert preference(teams, items, ["z"], ("A", "B")) == 1


def test_a_known_draft() -> None:
    a, b = ["1", "2", "3", "4"], ["2", "5", "1", "6"]
    items, teams = team_draft(a, b, 4, seed=0)
    first = "A" if teams[0] == "A" else "B"
    # whoever picks first takes its best; the other then takes its best not yet taken
    expected = (["1", "2", "3", "5"], ["A", "B", "A", "B"]) if first == "A" else (["2", "1", "5", "3"],
                                                                                  ["B", "A", "B", "A"])
    assert (items, teams) == expected
    assert team_draft(a, a, 4, seed=3)[0] == a  # the same ranking: nothing changes


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(0, 30), max_size=15, unique=True), st.lists(st.integers(0, 30), max_size=15, unique=True),
       st.integers(1, 20), st.integers(0, 2**31))
def test_the_merge_keeps_its_contract(a: list[int], b: list[int], k: int, seed: int) -> None:
    la, lb = [str(i) for i in a], [str(i) for i in b]
    items, teams = team_draft(la, lb, k, seed)
    assert len(items) == len(set(items)) == min(k, len(set(la) | set(lb)))
    for team, ranking in (("A", la), ("B", lb)):
        picked = [i for i, t in zip(items, teams, strict=True) if t == team]
        assert all(i in ranking for i in picked)
        assert picked == sorted(picked, key=ranking.index)  # each team adds its items in its own order
    assert team_draft(la, lb, k + 5, seed)[0][: len(items)] == items  # a page cut shorter is the same head
    balanced = [abs(teams[:n].count("A") - teams[:n].count("B")) for n in range(1, len(teams) + 1)]
    if len(la) >= k and len(lb) >= k and not set(la) & set(lb):
        assert max(balanced, default=0) <= 1


def test_a_simulated_shopper_who_prefers_one_ranker_is_named() -> None:
    rng = np.random.default_rng(0)
    shopper = ShopperModel()
    experiment = Experiment("e", "interleave", "search", (Variant("good"), Variant("bad")), (0.5, 0.5))
    outcomes = []
    for n in range(1500):
        relevance = {f"p{i}": (1.0 if i < 3 else 0.0) for i in range(12)}
        good = [f"p{i}" for i in range(12)]  # relevant first
        bad = good[::-1]  # relevant last
        items, teams = team_draft(good, bad, 10, seed=n, names=("good", "bad"))
        actions = shopper.session(items, list(range(10)), relevance, rng)
        events = tuple(("click", item, pos, float(n)) for pos, (item, act) in enumerate(zip(items, actions,
                                                                                            strict=True)) if act)
        imp = Impression(f"r{n}", float(n), "search", tuple(items), tuple(range(10)), query=f"q{n % 30}",
                         experiment="e", variant="interleaved", teams=tuple(teams))
        outcomes.append(Outcome(imp, events))
    report = interleave_report(experiment, outcomes)
    assert report["winner"] == "good" and report["always_valid_p"] < 0.05
    assert report["variants"]["good"]["preferred"] > report["variants"]["bad"]["preferred"]
    assert report["queries"]["preferred"]["good"] > report["queries"]["preferred"]["bad"]
    tie = interleave_report(experiment, outcomes[:0])
    assert tie["winner"] is None and tie["answers"] == 0


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_interleaved_answers_record_their_teams(tmp_path: Path, anyio_backend: str) -> None:
    old, _ = two_versions(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        started = await c.put("/shops/tiny/experiments/mix", json={
            "kind": "interleave", "surface": "search",
            "variants": {"A": {"search_model": old}, "B": {"search_model": "latest", "rules": False}}})
        answer = (await c.get("/shops/tiny/search", params={"q": "knife", "user_id": "u1", "per_page": 4})).json()
        again = (await c.get("/shops/tiny/search", params={"q": "knife", "user_id": "u1", "per_page": 4})).json()
        page2 = (await c.get("/shops/tiny/search", params={"q": "knife", "user_id": "u1", "per_page": 4,
                                                            "page": 2})).json()
        clicked = answer["hits"][0]["id"]
        await c.post("/shops/tiny/events", json={"events": [
            {"event_id": "k1", "user_id": "u1", "item_id": clicked, "type": "click", "timestamp": time.time(),
             "request_id": answer["request_id"]}]})
        assert app.state.impressions.flush()
        report = (await c.get("/shops/tiny/experiments/mix")).json()
        recs = await c.put("/shops/tiny/experiments/recs-mix", json={
            "kind": "interleave", "surface": "recommend", "variants": {"A": {}, "B": {"diversity": 0.5}}})
        rec_answer = (await c.get("/shops/tiny/users/u2/recommendations", params={"k": 5})).json()
    app.state.impressions.close()
    app.state.registry.close()
    assert started.status_code == 201 and answer["variant"] == "interleaved"
    assert [h["id"] for h in again["hits"]] == [h["id"] for h in answer["hits"]]  # the same list when read again
    assert not {h["id"] for h in page2["hits"]} & {h["id"] for h in answer["hits"]}  # pages of one list
    with Shop("tiny", tmp_path).store() as store:
        imp = store.get_impressions([answer["request_id"]])[answer["request_id"]]
    assert imp.teams is not None and len(imp.teams) == len(imp.items) == 4 and set(imp.teams) <= {"A", "B"}
    team = imp.teams[0]
    assert report["answers"] == 3 and report["variants"][team]["credited_clicks"] == 1
    assert report["variants"][team]["preferred"] == 1 and report["winner"] is None
    assert recs.status_code == 201 and rec_answer["variant"] == "interleaved" and len(rec_answer["items"]) == 5
