"""One contract for every door: ``shoprank ingest`` and the HTTP API accept and refuse the same records with the
same messages, upserts merge unless told to replace, a refused command leaves nothing behind, and shops,
products and a user's data can be deleted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoprank.cli.main import main
from shoprank.keys import KeyStore
from shoprank.shops import Shop
from tests.support.fakes import tiny_shop
from tests.support.serving import client, served_tiny

NOW = time.time() - 3600


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(home: Path) -> Iterator[tuple[Any, str]]:
    with served_tiny(home) as app_and_key:
        yield app_and_key


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest(*args: str) -> int:
    return main(["ingest", *args, "--quiet"])


# unknown products and NaN: the same refusal through both doors --------------------------------------------------
@pytest.mark.anyio
async def test_an_event_for_an_unknown_product_is_refused_by_cli_and_api_alike(served: Any, tmp_path: Path,
                                                                               capsys: Any) -> None:
    app, key = served
    ghost = {"event_id": "g1", "user_id": "u1", "item_id": "ghost-9", "type": "view", "timestamp": NOW}
    good = {**ghost, "event_id": "g0", "item_id": "tools-1-1"}
    assert ingest("events", str(jsonl(tmp_path / "e.jsonl", [good, ghost])), "--shop", "tiny") == 1
    cli_message = capsys.readouterr().err
    async with client(app, key) as c:
        answer = await c.post("/shops/tiny/events", json={"events": [good, ghost]})
    error = answer.json()["error"]
    assert answer.status_code == 422 and error["field"] == "events[1].item_id"
    assert "line 2: field 'item_id': unknown product 'ghost-9'; upsert it first" in cli_message
    assert error["details"][0]["message"] in cli_message  # the same words
    with Shop("tiny").store(create=False) as store:
        assert store.user_events("u1", limit=100)[-1].event_id.startswith("seed")  # nothing of either stored


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.anyio
async def test_nan_and_infinity_are_refused_naming_the_field_by_cli_and_api(served: Any, tmp_path: Path,
                                                                           capsys: Any, constant: str) -> None:
    app, key = served
    line = f'{{"id": "n1", "title": "Odd Price", "price": {constant}}}'
    assert ingest("products", str(jsonl(tmp_path / "p.jsonl", [line])), "--shop", "tiny") == 1
    cli_message = capsys.readouterr().err
    async with client(app, key) as c:
        answer = await c.put("/shops/tiny/products", content=f'{{"products": [{line}]}}',
                             headers={"Content-Type": "application/json"})
    error = answer.json()["error"]
    assert answer.status_code == 422 and error["field"] == "products[0].price"
    assert f"line 1: field 'price': {constant} is not a JSON number" in cli_message
    assert error["details"][0]["message"] in cli_message
    with Shop("tiny").store(create=False) as store:
        assert store.get_product("n1") is None


# encodings ---------------------------------------------------------------------------------------------------------
def test_a_latin1_file_is_refused_with_file_and_line_then_read_with_encoding(home: Path, tmp_path: Path,
                                                                             capsys: Any) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes("id,title\np1,Plain Kettle\np2,Cafetière à piston\n".encode("latin-1"))
    assert ingest("products", str(path), "--shop", "s") == 1
    err = capsys.readouterr().err
    assert f"{path}: line 3: not utf-8 text (byte 0xe8 at column 10)" in err and "--encoding" in err
    assert not Shop("s").exists()  # the refused command left no empty shop behind
    assert ingest("products", str(path), "--shop", "s", "--encoding", "latin-1") == 0
    with Shop("s").store(create=False) as store:
        assert store.get_product("p2").title == "Cafetière à piston"


def test_utf16_and_utf8_bom_files_are_detected(home: Path, tmp_path: Path) -> None:
    rows = [{"id": "p1", "title": "Crème brûlée torch"}]
    (tmp_path / "a.jsonl").write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-16")
    (tmp_path / "b.csv").write_text("id,title\np2,Smörgås board\n", encoding="utf-8-sig")
    assert ingest("products", str(tmp_path / "a.jsonl"), "--shop", "s") == 0
    assert ingest("products", str(tmp_path / "b.csv"), "--shop", "s") == 0
    with Shop("s").store(create=False) as store:
        assert [p.title for p in store.get_products(["p1", "p2"])] == ["Crème brûlée torch", "Smörgås board"]


# merge by default, --replace when asked -------------------------------------------------------------------------------
def test_reimporting_fewer_columns_merges_unless_replace(home: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    full.write_text("id,title,description,brand,price,colour\np1,Kettle,Boils water,Acme,20,red\n")
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("id,title,price\np1,Kettle 2,25\n")
    assert ingest("products", str(full), "--shop", "s") == 0
    assert ingest("products", str(fewer), "--shop", "s") == 0
    with Shop("s").store(create=False) as store:
        merged = store.get_product("p1")
    assert (merged.title, merged.price, merged.description, merged.brand, merged.attributes) == \
        ("Kettle 2", 25.0, "Boils water", "Acme", {"colour": "red"})
    assert ingest("products", str(fewer), "--shop", "s", "--replace") == 0
    with Shop("s").store(create=False) as store:
        replaced = store.get_product("p1")
    assert (replaced.description, replaced.brand, replaced.attributes) == ("", "", {})


@pytest.mark.anyio
async def test_api_upserts_merge_unless_replace(served: Any) -> None:
    app, key = served
    async with client(app, key) as c:
        await c.put("/shops/tiny/products", json={"products": [{"id": "m1", "title": "Mallet", "brand": "Acme",
                                                                "description": "Rubber head", "weight": "1kg"}]})
        await c.put("/shops/tiny/products", json={"products": [{"id": "m1", "title": "Mallet", "price": 9}]})
        merged = (await c.get("/shops/tiny/products/m1")).json()["product"]
        await c.put("/shops/tiny/products", params={"replace": "true"},
                    json={"products": [{"id": "m1", "title": "Mallet", "price": 9}]})
        replaced = (await c.get("/shops/tiny/products/m1")).json()["product"]
    assert (merged["brand"], merged["description"], merged["price"], merged["attributes"]) == \
        ("Acme", "Rubber head", 9.0, {"weight": "1kg"})
    assert (replaced["brand"], replaced["description"], replaced["attributes"]) == ("", "", {})


# no side effect from a refused command --------------------------------------------------------------------------------
def test_a_refused_ingest_leaves_no_shop_behind(home: Path, tmp_path: Path, capsys: Any) -> None:
    bad = jsonl(tmp_path / "p.jsonl", [{"id": "p1"}])  # no title
    assert ingest("products", str(bad), "--shop", "fresh") == 1
    assert "field 'title': is required" in capsys.readouterr().err
    assert not Shop("fresh").exists() and not (home / "fresh").exists()
    assert main(["shops", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_a_refused_ingest_keeps_an_existing_shop(home: Path, tmp_path: Path) -> None:
    assert ingest("products", str(jsonl(tmp_path / "ok.jsonl", [{"id": "p1", "title": "Kept"}])), "--shop", "s") == 0
    assert ingest("products", str(jsonl(tmp_path / "bad.jsonl", [{"id": "p2"}])), "--shop", "s") == 1
    with Shop("s").store(create=False) as store:
        assert store.counts()["products"] == 1


# deletions --------------------------------------------------------------------------------------------------------
def test_shops_delete_asks_for_yes_then_removes_the_shop(home: Path, capsys: Any) -> None:
    tiny_shop(home, "gone")
    assert main(["shops", "delete", "gone"]) == 1
    assert "repeat with --yes" in capsys.readouterr().err and Shop("gone").exists()
    assert main(["shops", "delete", "gone", "--yes"]) == 0
    assert "deleted shop 'gone' (40 products, 24 events, 0 judgments)" in capsys.readouterr().out
    assert not (home / "gone").exists()
    assert main(["shops", "delete", "gone", "--yes"]) == 1


def test_products_delete_is_all_or_nothing(home: Path, capsys: Any) -> None:
    tiny_shop(home, "s")
    assert main(["products", "delete", "tools-0-0", "nope", "--shop", "s"]) == 1
    assert "no product 'nope'; nothing was deleted" in capsys.readouterr().err
    assert main(["products", "delete", "tools-0-0", "tools-0-1", "--shop", "s"]) == 0
    with Shop("s").store(create=False) as store:
        assert store.get_products(["tools-0-0", "tools-0-1", "tools-1-0"])[:2] == [None, None]
        assert store.counts()["products"] == 38


def test_users_delete_from_the_cli_removes_their_events(home: Path, capsys: Any) -> None:
    tiny_shop(home, "s")
    assert main(["users", "delete", "u1", "--shop", "s"]) == 0
    assert "deleted user 'u1' from shop 's': 4 events" in capsys.readouterr().out
    with Shop("s").store(create=False) as store:
        assert store.user_events("u1") == [] and len(store.user_events("u2")) == 4


@pytest.mark.anyio
async def test_delete_user_over_http_forgets_their_events_and_personalisation(served: Any) -> None:
    app, key = served
    async with client(app, key) as c:
        users = (await c.get("/shops/tiny/users")).json()["users"]
        before = (await c.get("/shops/tiny/users/u1/recommendations")).json()["items"]  # an impression for u1
        await c.get("/shops/tiny/search", params={"q": "knife", "user_id": "u1"})  # and another
        answer = await c.delete("/shops/tiny/users/u1")
        again = await c.delete("/shops/tiny/users/u1")
        after = (await c.get("/shops/tiny/users/u1/recommendations")).json()["items"]
        listed = (await c.get("/shops/tiny/users")).json()["users"]
        search_key, _ = KeyStore(app.state.registry.home).create("search", shop="tiny")
        c.headers["Authorization"] = f"Bearer {search_key}"
        forbidden = await c.delete("/shops/tiny/users/u2")
    assert "u1" in users and "u1" not in listed
    assert answer.status_code == 200 and answer.json() == {"user_id": "u1",
                                                           "deleted": {"events": 4, "impressions": 2}}
    assert again.json()["deleted"] == {"events": 0, "impressions": 0}
    assert app.state.registry.get("tiny").store.user_events("u1") == []
    assert before[0]["reasons"] == ["you like Kitchen"]  # personalised from u1's events before, not after
    assert all(i["reasons"] == ["popular"] for i in after)
    assert forbidden.status_code == 403
