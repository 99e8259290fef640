"""A query defines a result set, then the ranker orders it: known answers on a tiny kitchen-and-garden shop.

The shop holds 5 frying pans among woks, saucepans, garden tools, tents and soundbars; a bag-of-words encoder
makes cosine = shared words, so the dense side matches exactly the products that share words with the query.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.result_set import WholeList
from shoprank.data.records import Judgment, Product
from shoprank.search.settings import SearchSettings, save_search_settings
from shoprank.shops import Shop

pytestmark = pytest.mark.anyio
DIM = 65536
THRESHOLD = 0.5


class WordsEncoder:
    """One hashed dimension per word (65,536) plus a small bias: cosine = shared words, near exactly."""

    name = "words"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM + 1), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % DIM] = 1.0
            out[i, -1] = 0.05
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts)


KINDS = [  # (title, brand, category, how many)
    ("cast iron frying pan", "ironclad", "Kitchen > Cookware", 5),
    ("carbon steel wok", "ironclad", "Kitchen > Cookware", 4),
    ("stainless saucepan", "ironclad", "Kitchen > Cookware", 4),
    ("garden pruning shears", "greenthumb", "Garden > Tools", 12),
    ("garden hose reel", "greenthumb", "Garden > Tools", 12),
    ("camping tent", "trailhead", "Outdoor > Camping", 8),
    ("wireless soundbar", "loudly", "Electronics > Audio", 5),
]


def catalogue() -> list[Product]:
    out = []
    for title, brand, category, count in KINDS:
        stem = title.split()[-1]
        for n in range(count):
            out.append(Product(id=f"{stem}-{n}", title=f"{title} {n}", brand=brand, category=category,
                               price=20.0 + n, language="en"))
    return out


def judgments() -> list[Judgment]:
    out = []
    for title, _, _, count in KINDS:
        stem = title.split()[-1]
        for extra in ("best", "cheap", "new", "buy", "good", "big", "small", "top"):
            for n in range(count):
                out.append(Judgment(f"{extra} {stem}", f"{stem}-{n}", 3.0 if n % 2 else 2.0))
            out.append(Judgment(f"{extra} {stem}", "soundbar-0" if stem != "soundbar" else "tent-0", 1.0))
    return out


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("lightgbm")
    from shoprank.search.stack import ENCODERS
    from tests.test_search_helpers import train_tiny_search

    ENCODERS["words"] = lambda folder, config: WordsEncoder()
    home = tmp_path_factory.mktemp("kitchen")
    shop = Shop("kitchen", home)
    with shop.store() as store:
        store.upsert_products(catalogue())
        store.upsert_judgments(judgments())
    train_tiny_search(shop, WordsEncoder(), "words", seed_data=False, threshold=THRESHOLD)
    return shop


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app(shop: Shop) -> tuple[Any, str]:
    from shoprank.keys import KeyStore
    from shoprank.serving import ServingConfig, create_app

    key, _ = KeyStore(shop.home).create("admin")
    app = create_app(shop.home, config=ServingConfig(watch_seconds=0, baseline=False))
    app.state.registry.load_all()
    return app, key


def _client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {key}"})


def _engine(shop: Shop) -> Any:
    from shoprank.search import SearchEngine

    return SearchEngine.load(shop)


def test_the_threshold_is_the_bundles(kitchen: Shop) -> None:
    from shoprank.search.matching import dense_threshold

    assert dense_threshold(_engine(kitchen).stack.config) == THRESHOLD


def test_nonsense_matches_nothing_and_frying_pan_matches_the_pans(kitchen: Shop) -> None:
    from shoprank.cascade import Cascade, Request

    engine = _engine(kitchen)
    assert engine.search("xyzzy qwerty", k=50) == ([], 0)
    page = Cascade(search=engine).run_one(Request("search", "frying pan", per_page=10, facets=True))
    assert page.total == 5 and sorted(page.ids) == [f"pan-{n}" for n in range(5)]
    assert sorted(page.facet_ids) == sorted(page.ids)


async def test_http_counts_total_and_facets_over_the_matching_set(kitchen: Shop) -> None:
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            body = (await c.get("/shops/kitchen/search", params={"q": "frying pan", "diversity": 0.9})).json()
            assert body["total"] == 5 and {h["id"] for h in body["hits"]} == {f"pan-{n}" for n in range(5)}
            assert [(f["value"], f["count"]) for f in body["facets"]["brand"]] == [("ironclad", 5)]
            assert [(f["value"], f["count"]) for f in body["facets"]["category"]] == [("Kitchen", 5)]
            empty = (await c.get("/shops/kitchen/search", params={"q": "xyzzy qwerty"})).json()
            assert empty["total"] == 0 and empty["hits"] == [] and empty["closest"] == []
            assert all(f == [] for f in empty["facets"].values())
    finally:
        app.state.registry.close()


async def test_diversity_never_promotes_a_non_matching_product(kitchen: Shop) -> None:
    from shoprank.rerank import RerankConfig, save_config

    with kitchen.store(create=False) as store:
        save_config(store, RerankConfig(diversity=1.0))
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            for query in ("frying pan", "steel wok", "garden shears"):
                body = (await c.get("/shops/kitchen/search", params={"q": query, "per_page": 20})).json()
                words = set(query.split())
                assert body["hits"] and len(body["hits"]) == min(20, body["total"])
                assert all(words & set(h["title"].split()) for h in body["hits"]), (query, body["hits"])
    finally:
        app.state.registry.close()
        with kitchen.store(create=False) as store:
            save_config(store, RerankConfig())


async def test_pages_are_disjoint_and_stable_with_and_without_facets(kitchen: Shop) -> None:
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            lists = {}
            for facets in ("true", "false"):
                pages, totals = [], set()
                for page in range(1, 7):  # 24 matches: five pages of 5 (the last holds 4), then none
                    body = (await c.get("/shops/kitchen/search", params={
                        "q": "garden", "page": page, "per_page": 5, "facets": facets})).json()
                    pages.append([h["id"] for h in body["hits"]])
                    totals.add(body["total"])
                flat = [pid for p in pages for pid in p]
                assert totals == {24} and len(flat) == len(set(flat)) == 24 and pages[-1] == []
                lists[facets] = flat
            assert lists["true"] == lists["false"]
    finally:
        app.state.registry.close()


async def test_a_pin_applies_with_and_without_facets_and_never_adds_a_non_match(kitchen: Shop) -> None:
    from shoprank.rerank import Rule, load_rules, save_rules

    with kitchen.store(create=False) as store:
        rules = load_rules(store)
        rules = rules.with_rule(Rule(id=rules.next_id(), action="pin", query="frying pan", products=("pan-4",),
                                     position=1))
        rules = rules.with_rule(Rule(id=rules.next_id(), action="pin", query="frying pan", products=("tent-0",),
                                     position=2))
        save_rules(store, rules)
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            for facets in ("true", "false"):
                body = (await c.get("/shops/kitchen/search", params={"q": "frying pan", "facets": facets})).json()
                ids = [h["id"] for h in body["hits"]]
                assert ids[0] == "pan-4" and "tent-0" not in ids and body["total"] == 5, facets
    finally:
        app.state.registry.close()
        with kitchen.store(create=False) as store:
            save_rules(store, type(rules)())


def test_batch_run_and_cli_answer_nothing_for_nonsense(kitchen: Shop, tmp_path: Path, capsys: Any) -> None:
    from shoprank.cli.main import main
    from shoprank.evaluation.trec import read_run

    queries = tmp_path / "q.csv"
    queries.write_text("qid,query\nq0,xyzzy qwerty\nq1,frying pan\n")
    out = tmp_path / "run.txt"
    assert main(["run", "search", "--shop", "kitchen", "--home", str(kitchen.home), "--queries", str(queries),
                 "--out", str(out), "--top", "20", "--quiet"]) == 0
    run = read_run(out)
    assert "q0" not in run and sorted(pid for pid, _ in run["q1"]) == [f"pan-{n}" for n in range(5)]
    capsys.readouterr()
    assert main(["search", "xyzzy qwerty", "--shop", "kitchen", "--home", str(kitchen.home)]) == 0
    printed = capsys.readouterr().out
    assert "0 results" in printed and "(none)" in printed


@pytest.mark.parametrize("limit", [10_000, 23])
def test_the_ranked_set_answers_what_re_ranking_the_whole_list_answers(kitchen: Shop, limit: int) -> None:
    from shoprank.cascade import Cascade, Request
    from shoprank.rerank import Rule, RuleSet, load_rules, save_rules
    from shoprank.rerank.shop import ShopReranking
    from shoprank.results import SearchFilters

    engine = _engine(kitchen)
    assert len(engine.search_set("garden hose pruning tent").tail_ids) > 3  # a set longer than the ranked pool
    asks = [Request("search", q, page=page, per_page=per_page, facets=facets, filters=filters)
            for q in ("garden", "garden hose pruning tent", "steel", "xyzzy qwerty")
            for page, per_page in ((1, 10), (3, 7), (1, 100))
            for facets in (True, False)
            for filters in (None, SearchFilters(price_max=27.0), SearchFilters(category="Garden"))]
    rulesets = [RuleSet(hide_out_of_stock=False),  # no re-ranking stage at all
                RuleSet(),  # stock only
                RuleSet(rules=(Rule(id=1, action="hide", products=("reel-3", "shears-11")),
                               Rule(id=2, action="hide", query="garden", brand="trailhead")),
                        filters=SearchFilters(price_max=29.0))]
    with kitchen.store(create=False) as store:
        before = load_rules(store)
        try:
            for ruleset in rulesets:
                save_rules(store, ruleset)
                reranking = ShopReranking(store)
                fast = Cascade(search=engine, reranking=reranking, store=store, match_limit=limit)
                whole = Cascade(search=WholeList(engine), reranking=reranking, store=store, match_limit=limit)
                for ask in asks:
                    a, b = fast.run_one(ask), whole.run_one(ask)
                    assert (a.items, a.total, a.facet_ids) == (b.items, b.total, b.facet_ids), (ruleset, ask)
                hidden = fast.run_one(Request("search", "garden", per_page=100))
                assert not {"reel-3", "shears-11"} & set(hidden.ids) or ruleset.rules == ()
        finally:
            save_rules(store, before)


def test_did_you_mean_when_nothing_matches(kitchen: Shop) -> None:
    from shoprank.cascade import Cascade, Request

    page = Cascade(search=_engine(kitchen)).run_one(Request("search", "frxyng"))
    assert page.total == 0 and page.items == [] and page.did_you_mean == "frying"
    assert Cascade(search=_engine(kitchen)).run_one(Request("search", "xyzzy qwerty")).did_you_mean is None


async def test_closest_products_only_when_the_shop_asks(kitchen: Shop) -> None:
    from shoprank.search.settings import SearchSettings, save_search_settings

    with kitchen.store(create=False) as store:
        save_search_settings(store, SearchSettings(closest_on_empty=3))
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            body = (await c.get("/shops/kitchen/search", params={"q": "pruning scissors"})).json()
            assert body["total"] > 0 and body["closest"] == []  # it matches: no closest list
            body = (await c.get("/shops/kitchen/search", params={"q": "xyzzy qwerty"})).json()
            assert body["total"] == 0 and body["hits"] == [] and len(body["closest"]) == 3
            assert all("does not match" in " ".join(h["reasons"]) for h in body["closest"])
    finally:
        app.state.registry.close()
        with kitchen.store(create=False) as store:
            save_search_settings(store, SearchSettings())


async def test_closest_on_empty_is_a_shop_setting_over_http(kitchen: Shop) -> None:
    app, key = _app(kitchen)
    try:
        async with _client(app, key) as c:
            assert (await c.get("/shops/kitchen/settings/search")).json()["settings"] == {"closest_on_empty": 0}
            saved = await c.put("/shops/kitchen/settings/search", json={"closest_on_empty": 4})
            assert saved.status_code == 200 and saved.json()["settings"] == {"closest_on_empty": 4}
            for bad, field in ((-1, "closest_on_empty"), (51, "closest_on_empty"), ("4", "closest_on_empty"),
                               (2.5, "closest_on_empty"), (True, "closest_on_empty")):
                refused = await c.put("/shops/kitchen/settings/search", json={"closest_on_empty": bad})
                error = refused.json()["error"]
                assert refused.status_code == 422 and error["field"] == field and field in error["message"], bad
            refused = await c.put("/shops/kitchen/settings/search", json={"closest_on_empty": 1, "closest": 2})
            assert refused.status_code == 422 and refused.json()["error"]["field"] == "closest"
            assert (await c.put("/shops/kitchen/settings/search", json=[1])).status_code == 400
            assert (await c.get("/shops/kitchen/settings/search")).json()["settings"] == {"closest_on_empty": 4}
            body = (await c.get("/shops/kitchen/search", params={"q": "xyzzy qwerty"})).json()
            assert body["total"] == 0 and body["hits"] == [] and len(body["closest"]) == 4
            assert all("does not match" in " ".join(h["reasons"]) for h in body["closest"])
            body = (await c.get("/shops/kitchen/search", params={"q": "frying pan"})).json()
            assert body["total"] == 5 and body["closest"] == []
            assert (await c.put("/shops/kitchen/settings/search", json={"closest_on_empty": 0})).status_code == 200
            assert (await c.get("/shops/kitchen/search", params={"q": "xyzzy qwerty"})).json()["closest"] == []
    finally:
        app.state.registry.close()
        with kitchen.store(create=False) as store:
            save_search_settings(store, SearchSettings())


def test_closest_on_empty_is_a_shop_setting_on_the_cli(kitchen: Shop, capsys: Any) -> None:
    from shoprank.cli.main import main

    home = ["--shop", "kitchen", "--home", str(kitchen.home)]
    try:
        assert main(["settings", "search", *home, "--closest-on-empty", "2"]) == 0
        assert "closest_on_empty=2" in capsys.readouterr().out
        for bad in ("-1", "51"):
            assert main(["settings", "search", *home, "--closest-on-empty", bad]) == 1
            assert "closest_on_empty" in capsys.readouterr().err
        assert main(["settings", "search", *home, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"closest_on_empty": 2}
        assert main(["search", "xyzzy qwerty", *home, "--no-server"]) == 0
        printed = capsys.readouterr().out
        shown = printed.split("closest products (they do not match the query):", 1)[1]
        assert "0 results" in printed
        assert len([line for line in shown.splitlines() if "closest in meaning" in line]) == 2
        assert main(["settings", "search", "--shop", "nowhere", "--home", str(kitchen.home)]) == 1
        assert "does not exist" in capsys.readouterr().err
    finally:
        with kitchen.store(create=False) as store:
            save_search_settings(store, SearchSettings())


def test_search_settings_are_checked() -> None:
    from shoprank.search.settings import SearchSettings

    with pytest.raises(ValueError, match="closest_on_empty"):
        SearchSettings(closest_on_empty=-1)
    with pytest.raises(ValueError, match="unknown search setting"):
        SearchSettings.from_dict({"closest": 3})
    assert SearchSettings.from_dict(SearchSettings(closest_on_empty=4).to_dict()).closest_on_empty == 4


def test_calibration_keeps_the_share_of_dense_only_relevant_products_asked_for() -> None:
    from shoprank.search.calibration import calibrate
    from shoprank.search.data import QuerySet
    from shoprank.search.stack import SearchStack, StackConfig

    class Synonyms(WordsEncoder):  # "sofa" and "couch" share a dimension: only meaning finds a couch for "sofa"
        def _encode(self, texts: Sequence[str]) -> np.ndarray:
            return super()._encode([t.lower().replace("sofa", "couch") for t in texts])

    products = [Product(id=f"c{n}", title="couch " + " ".join(f"w{n}x{j}" for j in range(n % 5)), language="en")
                for n in range(40)]
    products += [Product(id=f"t{n}", title=f"camping tent {n}", language="en") for n in range(10)]
    stack = SearchStack.build(products, Synonyms(), StackConfig(encoder="words", lexical_k=20, dense_k=60,
                                                                spelling=False))
    qset = QuerySet({"sofa": {f"c{n}": 2.0 for n in range(40)}, "tent": {f"t{n}": 2.0 for n in range(10)}})
    chosen = calibrate(stack, qset, ["sofa", "tent"], 1.5, keep_recall=0.8)
    cosines = stack.dense.vectors[:40] @ Synonyms().encode_queries(["sofa"])[0]
    kept = (cosines >= chosen.threshold).sum() + 10  # every tent is a lexical match
    assert kept / 50 >= 0.8 and chosen.kept_recall >= 0.8 * chosen.pool_recall
    assert chosen.threshold > float(np.min(cosines))  # it does cut: the least similar couches are lost
    assert chosen.nonsense_no_dense_match >= 0.95


def test_the_stock_array_follows_every_catalogue_change() -> None:
    from shoprank.search.catalog import Catalog

    products = [Product(id=f"p{n}", title=f"thing {n}", in_stock=n % 3 != 0, language="en") for n in range(6)]
    catalog = Catalog([p.id for p in products])
    assert catalog.in_stock().tolist() == [True] * 6  # no records attached yet: nothing is known out of stock
    catalog.attach(products)
    assert catalog.in_stock().tolist() == [False, True, True, False, True, True]
    catalog.attach([Product(id="p1", title="thing 1", in_stock=False, language="en")])
    catalog.append([Product(id="p3", title="thing 3", in_stock=True, language="en"),
                    Product(id="p6", title="thing 6", in_stock=False, language="en")])
    catalog.remove(["p4"])
    expected = [p is None or p.in_stock for p in catalog.products]
    assert catalog.in_stock().tolist() == expected == [False, False, True, True, True, True, True, False]


def test_the_stock_rule_reads_the_engines_stock_array_and_hides_the_same_products(kitchen: Shop) -> None:
    from shoprank.cascade import Cascade, Request
    from shoprank.rerank import RuleSet, load_rules, save_rules
    from shoprank.rerank.shop import ShopReranking

    engine = _engine(kitchen)
    gone = {"reel-1", "hose-2", "shears-0"}
    engine.upsert_products([Product(id=p.id, title=p.title, brand=p.brand, category=p.category, price=p.price,
                                    language="en", in_stock=p.id not in gone) for p in catalogue()
                            if p.id in gone])
    ranked = engine.search_set("garden hose pruning tent", lazy=True)
    assert ranked.tail_stock is not None and ranked.head_stock is not None
    assert ranked.tail_stock.tolist() == [p is None or p.in_stock for p in ranked.tail_products]
    assert ranked.head_stock.tolist() == [p is None or p.in_stock for p in ranked.head_products]
    assert not ranked.head_stock.all() or not ranked.tail_stock.all()  # some listed product is out of stock
    with kitchen.store(create=False) as store:
        before = load_rules(store)
        try:
            save_rules(store, RuleSet())  # the stock rule only
            reranking = ShopReranking(store)
            fast = Cascade(search=engine, reranking=reranking, store=store)
            whole = Cascade(search=WholeList(engine), reranking=reranking, store=store)
            for q in ("garden", "garden hose pruning tent", "hose reel"):
                a, b = fast.run_one(Request("search", q, per_page=100, facets=True)), \
                    whole.run_one(Request("search", q, per_page=100, facets=True))
                assert (a.items, a.total, a.facet_ids) == (b.items, b.total, b.facet_ids)
                assert not gone & set(a.ids)
        finally:
            save_rules(store, before)


def test_the_facet_codes_follow_every_catalogue_change() -> None:
    from shoprank.search.catalog import Catalog
    from shoprank.search.facets import FacetCodes

    def product(n: int, **kw: Any) -> Product:
        fields = {"title": f"thing {n}", "brand": ["acme", "", "zeta"][n % 3], "category": ["Tools > Drills",
                  "Garden", ""][n % 3], "price": [None, 9.0, 120.0, 2000.0][n % 4], "in_stock": n % 2 == 0}
        return Product(id=f"p{n}", language="en", **{**fields, **kw})

    catalog = Catalog([f"p{n}" for n in range(6)])
    catalog.attach([product(n) for n in range(6)])
    codes = catalog.facet_codes()  # made now, then kept current in place
    catalog.attach([product(1, brand="newco", category="Bath > Taps", price=30.0, in_stock=True)])
    catalog.append([product(3, brand="zeta"), product(6), product(7, brand="later", category="Kitchen")])
    catalog.remove(["p4"])
    assert catalog.facet_codes() is codes
    rows = np.asarray([7, 0, 1, 2, 3, 4, 5, 8, 6, 99, -1])  # 3 and 4 are gone (replaced, removed), 99 unknown
    fresh = FacetCodes(catalog.products)  # coded from scratch
    assert codes.count(rows) == fresh.count(rows) == fresh.count(rows.tolist())
    counted = codes.count(rows, top=2)
    # rows 7, 0, 1, 2, 5, 8, 6 hold p6 acme, p0 acme, p1 newco, p2 zeta, p5 zeta, p7 later, p3 zeta
    assert counted["brand"] == [{"value": "zeta", "count": 3}, {"value": "acme", "count": 2}]
    assert sum(v["count"] for v in counted["in_stock"]) == 7
    assert codes.count(np.zeros(0, np.int64)) == {"category": [], "brand": [], "price": [], "in_stock": []}


def test_a_searchs_facets_are_counted_by_rows_and_match_counting_its_ids(kitchen: Shop) -> None:
    from shoprank.cascade import Cascade, Request
    from shoprank.search.ranked import CatalogRows
    from shoprank.serving.catalog import Catalog as ServingCatalog

    engine = _engine(kitchen)
    with kitchen.store(create=False) as store:
        served = ServingCatalog(store)
        cascade = Cascade(search=engine)
        for q in ("garden", "garden hose pruning tent", "wireless soundbar"):
            page = cascade.run_one(Request("search", q, per_page=10, facets=True))
            assert isinstance(page.facet_ids, CatalogRows) and len(page.facet_ids) > 0
            ids = list(page.facet_ids)
            assert page.facet_ids == ids and ids[: len(page.ids)] == page.ids
            for cap in (3, len(ids)):
                assert served.facets(page.facet_ids[:cap]) == served.facets(ids[:cap])
