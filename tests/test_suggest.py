"""Query suggestions on a tiny catalogue and log with known answers, the API, and the lookup's speed."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import pytest

from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome
from shoprank.data.records import parse_product
from shoprank.keys import KeyStore
from shoprank.suggest import SuggestConfig, build_index
from tests.support.fakes import tiny_shop
from tests.test_analytics import client, fake_app

NOW = 1_800_000_000.0
PRODUCTS = [parse_product({"id": str(n), "title": title, "category": category})
            for n, (title, category) in enumerate([
                ("Cordless Drill", "Tools > Power Tools"), ("Drill Bits Set", "Tools > Accessories"),
                ("Garden Hose", "Garden > Watering"), ("Hose Reel", "Garden > Watering")])]


def searched(query: str, n: int, *, age_days: float = 0.0, found: bool = True, clicked: int = 0) -> list[Outcome]:
    out = []
    for i in range(n):
        items = ("1",) if found else ()
        imp = Impression(f"{query}-{age_days}-{i}", NOW - age_days * 86_400, "search", items, tuple(range(len(items))),
                         query=query, total=len(items))
        out.append(Outcome(imp, (("click", "1", 0, imp.timestamp),) if i < clicked else ()))
    return out


def texts(found: list[dict]) -> list[tuple[str, str]]:
    return [(s["text"], s["kind"]) for s in found]


def test_a_shop_with_no_log_suggests_titles_and_categories() -> None:
    index = build_index(PRODUCTS, now=NOW)
    assert texts(index.suggest("dri")) == [("Cordless Drill", "product"), ("Drill Bits Set", "product")]
    assert texts(index.suggest("wat")) == [("Watering", "category")]
    assert index.suggest("wat")[0]["path"] == "Garden > Watering"
    assert index.suggest("hose", k=8)[0] == {"text": "Garden Hose", "kind": "product", "id": "2"}
    assert index.suggest("") == [] and index.suggest("zzz") == []


def test_one_typo_in_the_prefix_is_forgiven_after_the_exact_matches() -> None:
    index = build_index(PRODUCTS, now=NOW)
    typo = index.suggest("dril bits")  # a dropped letter
    assert typo[0]["text"] == "Drill Bits Set" and typo[0]["typo"] is True
    assert index.suggest("hsoe")[0]["text"] in ("Garden Hose", "Hose Reel")  # two letters swapped
    assert all("typo" not in s for s in index.suggest("drill"))
    assert index.suggest("dr") == index.suggest("dr")  # short prefixes: exact only
    assert not any(s.get("typo") for s in index.suggest("gx"))


def test_logged_queries_that_found_something_come_first_weighted_by_clicks_and_recency() -> None:
    log = (searched("drill", 3, clicked=3) + searched("drill press", 4) + searched("drywall", 1)
           + searched("dragon", 5, found=False) + searched("drill stand", 8, age_days=90))
    index = build_index(PRODUCTS, log, SuggestConfig(min_searches=2), now=NOW)
    found = texts(index.suggest("dr", k=5))
    assert found[:3] == [("drill", "query"), ("drill press", "query"), ("drill stand", "query")]
    assert ("drywall", "query") not in found and ("dragon", "query") not in found  # once; found nothing
    assert index.suggest("dr", k=5)[0]["searches"] == 3
    assert found[3:] == [("Cordless Drill", "product"), ("Drill Bits Set", "product")]


def test_a_lookup_takes_well_under_5_ms_on_20000_products() -> None:
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    products = [parse_product({"id": str(n), "title": " ".join(rng.choices(words, k=4)),
                               "category": f"C{n % 50} > D{n % 300}"}) for n in range(20_000)]
    index = build_index(products, now=NOW)
    prefixes = [w[: rng.randint(2, 6)] for w in rng.choices(words, k=300)]
    prefixes += ["qzx", "abcq"]  # nothing exact: the typo path
    spent = []
    for prefix in prefixes:
        start = time.perf_counter()
        index.suggest(prefix)
        spent.append(time.perf_counter() - start)
    assert statistics.median(spent) < 0.005


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_endpoint(tmp_path: Path, anyio_backend: str) -> None:
    tiny_shop(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        found = (await c.get("/shops/tiny/suggest", params={"q": "dri"})).json()
        empty = await c.get("/shops/tiny/suggest", params={"q": "  "})
        long = await c.get("/shops/tiny/suggest", params={"q": "x" * 101})
        control = await c.get("/shops/tiny/suggest", params={"q": "dr\x00ill"})
        missing = await c.get("/shops/nope/suggest", params={"q": "dri"})
    app.state.registry.close()
    assert found["query"] == "dri" and {"text": "Acme Drill", "kind": "product", "id": "tools-0-0"} in \
        found["suggestions"]
    for bad in (empty, long, control):
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "q"
    assert missing.status_code == 404
