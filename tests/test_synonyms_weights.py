"""Weighted query expansion: an added synonym's terms count ``weight`` times their BM25 score, the typed ones 1.

Known answers on a tiny catalogue where 'couch' and 'sofa' have the same term statistics (one product each, titles
of the same length), so the only difference between the two products is which word the shopper typed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shoprank.data.records import Product
from shoprank.keys import KeyStore
from shoprank.ranking.features import FEATURES, compute_features
from shoprank.retrieval.bm25 import BM25Config, BM25Index
from shoprank.search.engine import SearchEngine
from shoprank.search.stack import NoEncoder, SearchStack, StackConfig
from shoprank.synonyms import DEFAULT_WEIGHT, ExpansionConfig, SynonymError, Synonyms
from shoprank.synonyms.engine import WithSynonyms
from shoprank.text import EnglishAnalyzer
from tests.support.fakes import tiny_shop
from tests.test_analytics import client, fake_app

TITLES = ["grey couch", "grey sofa", "leather armchair", "oak table", "garden hose", "grey rug"]


def catalogue(titles: list[str] = TITLES) -> list[Product]:
    return [Product(id=f"p{i}", title=t, category="Home > Living", language="en") for i, t in enumerate(titles)]


def index() -> BM25Index:
    return BM25Index(EnglishAnalyzer(), BM25Config(weights={"title": 1.0})).build(catalogue())


def engine(titles: list[str] = TITLES) -> SearchEngine:
    stack = SearchStack.build(catalogue(titles), NoEncoder(), StackConfig(encoder="none"))
    return SearchEngine(stack, "v1")


def test_an_added_term_scores_its_weight_times_its_bm25() -> None:
    bm25 = index()
    tokens, weights = bm25.expand(["couch"], [("sofa", 0.5)])
    assert tokens == ["couch", "sofa"] and weights == [1.0, 0.5]
    scores = bm25.score(tokens, weights)
    full = bm25.score(["couch", "sofa"])
    assert full[0] == pytest.approx(full[1]) and full[0] > 0  # equal term statistics: a tie at full weight
    assert scores[0] == pytest.approx(full[0]) and scores[1] == pytest.approx(0.5 * full[1])
    assert scores[0] > scores[1] > 0 and np.all(scores[2:] == 0)
    # a differential check: the weighted sum of one-term scores
    for query, w in [(["grey", "couch"], [1.0, 0.25]), (["grey", "sofa", "rug"], [0.75, 1.0, 0.5])]:
        expected = sum(wt * bm25.score([t]) for t, wt in zip(query, w, strict=True))
        np.testing.assert_allclose(bm25.score(query, w), expected, rtol=1e-6)


def test_no_weights_or_all_ones_is_the_unweighted_sum_bit_for_bit() -> None:
    bm25 = index()
    for tokens in (["grey"], ["grey", "couch", "sofa"], ["couch", "couch", "nothing"]):
        unweighted = bm25.score(tokens)
        np.testing.assert_array_equal(bm25.score(tokens, [1.0] * len(tokens)), unweighted)
        terms = bm25.query_terms(tokens)
        np.testing.assert_array_equal(unweighted, np.asarray(bm25.combined[:, terms].sum(axis=1)).ravel())
    assert bm25.expand(["couch"], []) == (["couch"], None)
    assert bm25.expand(["couch"], [("sofa", 1.0)]) == (["couch", "sofa"], None)  # w=1: the unweighted path
    assert bm25.expand(["couch", "sofa"], [("sofa", 0.5)]) == (["couch", "sofa"], None)  # typed: weight 1
    with pytest.raises(ValueError, match="one per token"):
        bm25.score(["couch", "sofa"], [1.0])
    with pytest.raises(ValueError, match="finite"):
        bm25.score(["couch"], [math.nan])


def test_lexical_features_use_the_weights() -> None:
    bm25 = index()
    rows = np.arange(len(TITLES))
    tokens, weights = bm25.expand(["couch"], [("sofa", 0.5)])
    products = catalogue()
    dense = np.zeros(len(rows), np.float32)
    plain = compute_features(bm25, tokens, "couch sofa", rows, products, dense)
    ones = compute_features(bm25, tokens, "couch sofa", rows, products, dense, weights=[1.0, 1.0])
    np.testing.assert_array_equal(plain, ones)
    feats = compute_features(bm25, tokens, "couch sofa", rows, products, dense, weights=weights)
    bm = FEATURES.index("bm25")
    np.testing.assert_allclose(feats[:, bm], bm25.score(tokens, weights), rtol=1e-6)
    coverage = feats[:, FEATURES.index("coverage")]
    assert coverage[0] == pytest.approx(1 / 1.5) and coverage[1] == pytest.approx(0.5 / 1.5)


def test_the_typed_word_outranks_its_synonym_and_reasons_name_it() -> None:
    search = WithSynonyms(engine(), Synonyms.from_dict({"synonyms": ["couch, sofa"], "weight": 0.5}))
    items, total = search.search("couch")
    assert [i.id for i in items] == ["p0", "p1"] and total == 2
    assert items[0].score > items[1].score > 0
    assert items[1].score == pytest.approx(0.5 * items[0].score)
    assert "matches 'sofa' (synonym of 'couch')" in items[1].reasons
    items, _ = search.search("sofa")  # multi-way: the other way round
    assert [i.id for i in items] == ["p1", "p0"]
    assert "matches 'couch' (synonym of 'sofa')" in items[1].reasons


def test_weight_one_reproduces_the_full_weight_ranking() -> None:
    titles = ["grey couch", "grey sofa", "sofa bed with couch cover", "settee", "grey settee sofa", "couch",
              "oak table", "garden hose", "leather sofa", "grey couch and sofa set"]
    plain = engine(titles)
    rules = ["couch, sofa, settee", "table => desk"]
    for query in ["couch", "grey sofa", "settee", "oak table", "garden hose"]:
        expansion = Synonyms.from_dict({"synonyms": rules}).expand(query)
        old, old_total = plain.search(expansion.text)  # what expansion was: the terms appended at full weight
        new, new_total = WithSynonyms(plain, Synonyms.from_dict({"synonyms": rules, "weight": 1.0})).search(query)
        assert [(i.id, i.score) for i in new] == [(i.id, i.score) for i in old] and new_total == old_total
        weighted, weighted_total = WithSynonyms(plain, Synonyms.from_dict({"synonyms": rules})).search(query)
        assert weighted_total == old_total  # the weight orders the matches, never decides them
        assert {i.id for i in weighted} == {i.id for i in old}


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.01, 2, math.nan, math.inf, True, "0.5", None])
def test_a_weight_out_of_range_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(SynonymError) as caught:
        Synonyms.from_dict({"synonyms": ["couch, sofa"], "weight": bad})
    assert caught.value.field == "weight" and "above 0 and at most 1" in caught.value.message


def test_the_weight_has_a_default_and_round_trips() -> None:
    assert ExpansionConfig().weight == DEFAULT_WEIGHT and 0 < DEFAULT_WEIGHT <= 1
    synonyms = Synonyms.from_dict({"synonyms": ["couch, sofa"]})
    assert synonyms.weight == DEFAULT_WEIGHT and synonyms.expand("couch").weighted() == (("sofa", DEFAULT_WEIGHT),)
    again = Synonyms.from_dict(Synonyms.from_dict({"synonyms": ["couch, sofa"], "weight": 0.3}).to_dict())
    assert again.weight == 0.3 and again.to_dict() == {"synonyms": ["couch, sofa"], "weight": 0.3}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_api_sets_the_weight_and_refuses_a_bad_one(tmp_path: Path, anyio_backend: str) -> None:
    tiny_shop(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    headers = {"Content-Type": "application/json"}
    async with client(app, key) as c:
        put = await c.put("/shops/tiny/synonyms", json={"synonyms": ["tube => hose"], "weight": 0.25})
        answers = [await c.put("/shops/tiny/synonyms", content=body, headers=headers) for body in (
            '{"synonyms": ["couch, sofa"], "weight": 0}', '{"synonyms": ["couch, sofa"], "weight": 1.5}',
            '{"synonyms": ["couch, sofa"], "weight": NaN}', '{"synonyms": ["couch, sofa"], "weight": "high"}')]
        kept = (await c.get("/shops/tiny/synonyms")).json()
        found = (await c.get("/shops/tiny/search", params={"q": "tube"})).json()
    app.state.impressions.close()
    app.state.registry.close()
    assert put.status_code == 200 and put.json()["weight"] == 0.25
    for answer in answers:
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "weight" and "above 0 and at most 1" in error["message"]
    assert kept["synonyms"] == ["tube => hose"] and kept["weight"] == 0.25  # nothing half-applied
    assert found["total"] > 0 and all(h["score"] == pytest.approx(0.25) for h in found["hits"])  # 'hose' at 0.25
    assert "matches 'hose' (synonym of 'tube')" in found["hits"][0]["reasons"]


def test_the_cli_sets_the_weight_and_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.cli.main import main

    tiny_shop(tmp_path)
    home = ["--shop", "tiny", "--home", str(tmp_path)]
    assert main(["synonyms", "add", "couch, sofa", *home]) == 0
    assert main(["synonyms", "weight", *home]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{DEFAULT_WEIGHT:g}"
    assert main(["synonyms", "weight", "0.3", *home]) == 0
    assert main(["synonyms", "add", "tv => television", *home]) == 0  # adding a rule keeps the weight
    capsys.readouterr()
    for bad in ("0", "1.5", "nan", "-1", "lots"):
        assert main(["synonyms", "weight", bad, *home]) == 1
        err = capsys.readouterr().err
        assert "weight" in err and "above 0 and at most 1" in err, err
    assert main(["synonyms", "list", *home]) == 0
    out = capsys.readouterr().out
    assert "added terms weigh 0.3" in out and "tv => television" in out
    rules = tmp_path / "synonyms.json"
    rules.write_text('{"synonyms": ["hose, tube"], "weight": 2}')
    assert main(["synonyms", "set", str(rules), *home]) == 1
    assert "weight" in capsys.readouterr().err
