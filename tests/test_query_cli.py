"""``shoprank search|recommend|similar`` answer as the API does: the shop's rules hide out-of-stock products,
sorting works, an unknown product is a clear error, no third-party output; and a running ``shoprank serve`` on
the same home is reused instead of loading the models again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoprank.cli.main import main
from shoprank.shops import Shop
from tests.test_search_helpers import train_tiny_search


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    shop = Shop("tiny", tmp_path_factory.mktemp("home"))
    train_tiny_search(shop)
    from dataclasses import replace

    with shop.store() as store:  # drill-1 leaves stock; the shop's default rule hides it
        store.upsert_products([replace(store.get_product("drill-1"), in_stock=False)])
    return shop


def test_cli_search_hides_out_of_stock_like_the_api_and_prints_nothing_else(searchable: Shop, capfd: Any) -> None:
    from tests.test_search_helpers import register_keyword_encoder

    register_keyword_encoder()
    assert main(["search", "drill", "--shop", "tiny", "--home", str(searchable.home), "--no-server"]) == 0
    out, err = capfd.readouterr()
    shown = [line.split("]")[0].split("[")[1] for line in out.splitlines()[1:]]
    assert sorted(shown[:5]) == ["drill-0", "drill-2", "drill-3", "drill-4", "drill-5"] and "drill-1" not in shown
    assert err == ""  # no third-party warning or progress bar


def test_cli_search_sorts_by_price(searchable: Shop, capsys: Any) -> None:
    from tests.test_search_helpers import register_keyword_encoder

    register_keyword_encoder()
    assert main(["search", "drill", "--shop", "tiny", "--home", str(searchable.home), "--no-server",
                 "--sort", "price_desc", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "by price desc" in out
    assert [line.split("]")[0].split("[")[1] for line in out.splitlines()[1:]] == ["drill-5", "drill-4", "drill-3"]


def test_cli_similar_for_an_unknown_product_is_a_clear_error(searchable: Shop, capsys: Any) -> None:
    assert main(["similar", "--item", "nope", "--shop", "tiny", "--home", str(searchable.home)]) == 1
    assert capsys.readouterr().err == "error: shop 'tiny' has no product 'nope'\n"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    from shoprank.local import announce, withdraw
    from tests.support.fakes import tiny_shop
    from tests.support.serving import threaded_server

    tiny_shop(tmp_path, "tiny")
    with threaded_server(tmp_path) as (app, port):
        app.state.local_token = announce(tmp_path, "127.0.0.1", port)
        try:
            yield tmp_path, app
        finally:
            withdraw(tmp_path, app.state.local_token)


def test_cli_queries_reuse_a_running_server(running: tuple[Path, Any], capsys: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    import shoprank.cascade.load as load

    home, app = running

    def no_local_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CLI loaded the models although a server was running")

    monkeypatch.setattr(load, "load_cascade", no_local_load)
    assert main(["search", "knife", "--shop", "tiny", "--home", str(home), "--sort", "price_asc", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "7 results" in out and out.splitlines()[1].startswith("   1. [kitchen-0-0] Acme Chef Knife  35.00 EUR")
    assert main(["recommend", "--user", "u1", "--shop", "tiny", "--home", str(home)]) == 0
    assert "you like Kitchen" in capsys.readouterr().out
    assert main(["similar", "--item", "kitchen-0-0", "--shop", "tiny", "--home", str(home)]) == 0
    assert "bought together for [kitchen-0-0]" in capsys.readouterr().out
    url = (home / "server.json").read_text().split('"url": "')[1].split('"')[0]
    token = app.state.local_token
    write = httpx.put(f"{url}/shops/tiny/products", json={"delete": ["kitchen-0-0"]},
                      headers={"Authorization": f"Bearer {token}"})
    assert write.status_code == 403  # the local token reads, never writes


def test_a_stale_server_file_is_ignored(tmp_path: Path) -> None:
    from shoprank.local import SERVER_FILE, find_server

    (tmp_path / SERVER_FILE).write_text('{"url": "http://127.0.0.1:9", "pid": 999999999, "token": "x"}')
    assert find_server(tmp_path) is None
