"""What the HTTP API answers equals what the batch commands write: one cascade behind every door.

A tiny trained search shop and a tiny trained recommendation shop, with the shop's re-ranking on (diversity
and a pin rule), asked the same questions through the in-process HTTP app and through ``shoprank run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.cli.main import main
from shoprank.evaluation.trec import read_run
from shoprank.keys import KeyStore
from shoprank.rerank import RerankConfig, Rule, load_rules, save_config, save_rules
from shoprank.serving import ServingConfig, create_app
from shoprank.synonyms import SynonymRule, Synonyms
from shoprank.synonyms.rules import save_synonyms

pytestmark = pytest.mark.anyio

QUERIES = ["cordless drill", "garden hose", "paint", "ladder light", "saw blade"]
USERS = ["u0", "u3", "u7", "u11", "nobody"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    from tests.test_serving_real_engines import train_recommend_shop, train_search_shop

    home = tmp_path_factory.mktemp("doors")
    search_shop = train_search_shop(home)
    rec_shop = train_recommend_shop(home)
    for shop in (search_shop, rec_shop):
        with shop.store(create=False) as store:
            save_config(store, RerankConfig(diversity=0.5))
    with search_shop.store(create=False) as store:  # a pin: the re-ranking stage must act on both doors
        rules = load_rules(store)
        first = "paint-5"  # a match for "paint" that the ranker puts far below place 2
        save_rules(store, rules.with_rule(Rule(id=rules.next_id(), action="pin", query="paint",
                                               products=(first,), position=2)))
        # a synonym: the batch run must expand "saw blade" as the server does
        save_synonyms(store, Synonyms([SynonymRule(terms=("saw", "blower"))]))
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0))
    app.state.registry.load_all()
    yield home, app, key, first
    app.state.registry.close()


def _client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {key}"})


def _run(home: Path, tmp: Path, *args: str) -> dict[str, list[str]]:
    out = tmp / "run.txt"
    assert main([*args, "--home", str(home), "--out", str(out), "--top", "20", "--quiet"]) == 0
    return {qid: [pid for pid, _ in pairs] for qid, pairs in read_run(out).items()}


async def test_search_pages_equal_the_batch_run(doors: Any, tmp_path: Path) -> None:
    home, app, key, pinned = doors
    queries = tmp_path / "queries.csv"
    queries.write_text("qid,query\n" + "".join(f"q{n},{q}\n" for n, q in enumerate(QUERIES)))
    batch = _run(home, tmp_path, "run", "search", "--shop", "hardware", "--queries", str(queries))
    async with _client(app, key) as c:
        for n, query in enumerate(QUERIES):
            for facets in ("true", "false"):
                pages = []
                for page in (1, 2):
                    r = await c.get("/shops/hardware/search", params={"q": query, "page": page, "per_page": 10,
                                                                      "facets": facets})
                    assert r.status_code == 200, r.text
                    pages.append([hit["id"] for hit in r.json()["hits"]])
                assert pages[0] + pages[1] == batch[f"q{n}"], (query, facets)
    assert batch["q2"][1] == pinned  # the pin for "paint" holds place 2 on both doors
    assert any(pid.startswith("blower-") for pid in batch["q4"])  # "saw blade" expanded with its synonym


async def test_recommendations_equal_the_batch_run(doors: Any, tmp_path: Path) -> None:
    home, app, key, _ = doors
    users = tmp_path / "users.txt"
    users.write_text("\n".join(USERS) + "\n")
    out = tmp_path / "rec.txt"
    assert main(["run", "recommend", "--shop", "tiny", "--home", str(home), "--users", str(users), "--out", str(out),
                 "--top", "10"]) == 0
    batch = {user: [pid for pid, _ in pairs] for user, pairs in read_run(out).items()}
    async with _client(app, key) as c:
        for user in USERS:
            r = await c.get(f"/shops/tiny/users/{user}/recommendations", params={"k": 10})
            assert r.status_code == 200, r.text
            assert [item["id"] for item in r.json()["items"]] == batch[user], user
