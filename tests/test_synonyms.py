"""Synonyms: rules checked whole (loops, sizes), the expansion they make, reasons that say so, the API and
CLI, and synonyms mined from a log with known reformulations and shared clicks."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.keys import KeyStore
from shoprank.synonyms import SynonymError, Synonyms, explain, mine_synonyms
from tests.support.fakes import tiny_shop
from tests.test_analytics import client, fake_app


def test_multi_way_and_one_way_expansion() -> None:
    synonyms = Synonyms.from_dict({"synonyms": ["couch, sofa, Settee", "tv => television", {"terms": ["flat screen",
                                                                                                      "lcd"]}]})
    expanded = synonyms.expand("cheap couch")
    assert expanded.text == "cheap couch sofa settee"
    assert expanded.added == (("sofa", "couch"), ("settee", "couch"))
    assert synonyms.expand("tv stand").added == (("television", "tv"),)
    assert synonyms.expand("television").added == ()  # one way only
    assert synonyms.expand("tvs").added == ()  # whole words
    assert synonyms.expand("Flat  Screen deal").added == (("lcd", "flat screen"),)
    assert synonyms.expand("sofa couch").added == (("settee", "sofa"),)  # a term already there is not added
    assert synonyms.to_dict()["synonyms"] == ["couch, sofa, settee", "tv => television", "flat screen, lcd"]


@pytest.mark.parametrize(("rules", "field", "words"), [
    (["a => b", "b => a"], "synonyms[1]", "closes a loop"),
    (["a => b", "b => c", "c => a"], "synonyms[2]", "closes a loop"),
    ([", ".join(f"w{i}" for i in range(10_000))], "synonyms[0]", "at most 32"),
    (["a => b => c"], "synonyms[0]", "more than once"),
    (["lonely"], "synonyms[0]", "at least two"),
    (["a => a"], "synonyms[0]", "both sides"),
    ([{"terms": ["a", "b"], "to": ["c"]}], "synonyms[0]", "either terms"),
    (["one two three four five, x"], "synonyms[0]", "too long"),
    ("a, b", "synonyms", "must be a list"),
])
def test_bad_rules_are_refused_whole_naming_the_rule(rules: object, field: str, words: str) -> None:
    with pytest.raises(SynonymError) as caught:
        Synonyms.from_dict({"synonyms": rules})
    assert caught.value.field == field and words in caught.value.message


def test_too_many_terms_in_all() -> None:
    rules = [", ".join(f"t{n}-{i}" for i in range(30)) for n in range(400)]
    with pytest.raises(SynonymError, match="terms in all"):
        Synonyms.from_dict({"synonyms": rules})


def test_reasons_say_which_word_stood_for_which() -> None:
    added = (("sofa", "couch"),)
    assert explain(["matches 'sofa' and 'grey'"], added) == ["matches 'sofa' (synonym of 'couch') and 'grey'"]
    assert explain(["matches grey, sofa", "popular"], added) == ["matches grey, 'sofa' (synonym of 'couch')",
                                                                 "popular"]


def _search(rid: str, user: str, t: float, query: str, clicks: tuple[str, ...] = ()) -> Outcome:
    imp = Impression(rid, t, "search", ("p1", "p2", "p3"), (0, 1, 2), user_id=user, query=query, total=3)
    return Outcome(imp, tuple(("click", item, None, t + 1) for item in clicks))


def test_synonyms_mined_from_reformulations_and_shared_clicks() -> None:
    log = [_search("1", "u1", 0, "sofa"), _search("2", "u1", 20, "couch", ("p1",)),
           _search("3", "u2", 100, "sofa"), _search("4", "u2", 130, "couch", ("p2",)),
           _search("5", "u3", 200, "sof"), _search("6", "u3", 210, "sofa", ("p1",)),  # typed on: not counted
           _search("7", "u4", 300, "tv", ("p1", "p2")), _search("8", "u5", 400, "television", ("p1", "p2", "p3")),
           _search("9", "u6", 500, "lamp"), _search("10", "u6", 9000, "lights", ("p3",))]  # too far apart
    found = mine_synonyms(log)
    assert found[0] == {"rule": "sofa => couch", "kind": "reformulation", "evidence": 2}
    assert {"rule": "television, tv", "kind": "shared_clicks", "evidence": 2, "overlap": 0.667} in found
    assert not any("lamp" in s["rule"] or s["rule"].startswith("sof =>") for s in found)
    covered = mine_synonyms(log, Synonyms.from_dict({"synonyms": ["sofa, couch"]}))
    assert not any(s["rule"] == "sofa => couch" for s in covered)  # already a synonym


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_api_applies_them_in_search_and_refuses_loops(tmp_path: Path, anyio_backend: str) -> None:
    tiny_shop(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        before = (await c.get("/shops/tiny/search", params={"q": "tube"})).json()
        put = await c.put("/shops/tiny/synonyms", json={"synonyms": ["tube => hose", "couch, sofa"]})
        after = (await c.get("/shops/tiny/search", params={"q": "tube"})).json()
        loop = await c.put("/shops/tiny/synonyms", json={"synonyms": ["tube => hose", "hose => tube"]})
        kept = (await c.get("/shops/tiny/synonyms")).json()
        mined = await c.get("/shops/tiny/synonyms/suggested")
    app.state.impressions.close()
    app.state.registry.close()
    assert before["total"] == 0 and put.status_code == 200
    assert after["total"] > 0 and all("Hose" in h["title"] for h in after["hits"])
    assert "matches 'hose' (synonym of 'tube')" in after["hits"][0]["reasons"]
    assert after["query"] == "tube" and after["synonyms"] == [{"term": "hose", "of": "tube"}]
    assert loop.status_code == 422 and loop.json()["error"]["field"] == "synonyms[1]"
    assert kept["synonyms"] == ["tube => hose", "couch, sofa"]  # nothing half-applied
    assert mined.status_code == 200 and mined.json()["suggested"] == []


def test_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.cli.main import main

    tiny_shop(tmp_path)
    home = ["--shop", "tiny", "--home", str(tmp_path)]
    assert main(["synonyms", "add", "couch, sofa", *home]) == 0
    assert main(["synonyms", "add", "tv => television", *home]) == 0
    assert main(["synonyms", "add", "television => tv", *home]) == 1
    assert "closes a loop" in capsys.readouterr().err
    assert main(["synonyms", "remove", "1", *home]) == 0
    assert main(["synonyms", "list", *home]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split() == ["1", "tv", "=>", "television"]
    rules = tmp_path / "synonyms.txt"
    rules.write_text("# the shop's words\nhose, tube\nsaw => blade\n")
    assert main(["synonyms", "set", str(rules), *home]) == 0
    assert "2 rules stored" in capsys.readouterr().out
    assert main(["synonyms", "suggest", *home]) == 0
