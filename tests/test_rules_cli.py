"""``shoprank rules list|add|remove|set-diversity``: editing a shop's rules and λ from the command line."""

from __future__ import annotations

import json

import pytest

from shoprank.cli.main import main
from shoprank.rerank import RerankConfig, Rule, load_config, load_rules
from shoprank.shops import Shop


@pytest.fixture
def home(tmp_path):  # noqa: ANN001, ANN201
    Shop("s", tmp_path).store().close()
    return tmp_path


def rules(home, *argv: str) -> int:  # noqa: ANN001
    return main(["rules", *argv, "--shop", "s", "--home", str(home)])


def test_add_list_remove_round_trip(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert rules(home, "add", "pin", "--query", "drill", "--products", "p-123", "--position", "1") == 0
    assert rules(home, "add", "boost", "--query", "drill", "--match", "contains", "--brand", "Makita",
                 "--amount", "0.2") == 0
    assert rules(home, "add", "hide", "--products", "p-55,p-56", "--note", "recalled") == 0
    out = capsys.readouterr().out
    assert "added rule 1" in out and "added rule 3" in out
    with Shop("s", home).store(create=False) as store:
        stored = load_rules(store)
    assert [r.id for r in stored.rules] == [1, 2, 3]
    assert stored.get(1) == Rule(id=1, action="pin", query="drill", products=("p-123",), position=1)
    assert stored.get(2).brand == "Makita" and stored.get(2).amount == 0.2 and stored.get(2).match == "contains"
    assert stored.get(3).products == ("p-55", "p-56") and stored.get(3).note == "recalled"

    assert rules(home, "list") == 0
    listing = capsys.readouterr().out
    assert "diversity λ=0 (off)" in listing and "hide out of stock: yes" in listing
    assert "pin" in listing and "p-123" in listing and "Makita" in listing

    assert rules(home, "remove", "2") == 0
    assert rules(home, "list", "--json") == 0
    raw = json.loads(capsys.readouterr().out.split("removed rule 2\n", 1)[1])
    assert [r["id"] for r in raw["rules"]] == [1, 3]


def test_add_with_an_id_replaces_that_rule(home) -> None:  # noqa: ANN001
    assert rules(home, "add", "bury", "--category", "Tools", "--target-category", "Accessories", "--amount", "0.5") == 0
    assert rules(home, "add", "bury", "--id", "1", "--target-category", "Accessories", "--amount", "0.1") == 0
    with Shop("s", home).store(create=False) as store:
        stored = load_rules(store)
    assert len(stored.rules) == 1 and stored.get(1).amount == 0.1 and stored.get(1).category is None


def test_bad_rules_and_unknown_ids_are_clear_errors(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert rules(home, "add", "pin", "--products", "p-1") == 1  # a pin needs a position
    assert "position" in capsys.readouterr().err
    assert rules(home, "add", "boost", "--products", "p-1") == 1  # a boost needs an amount
    assert "amount" in capsys.readouterr().err
    assert rules(home, "remove", "9") == 1
    assert "no rule 9" in capsys.readouterr().err
    with Shop("s", home).store(create=False) as store:
        assert load_rules(store).rules == ()


def test_set_diversity_is_stored_and_checked(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert rules(home, "set-diversity", "0.2") == 0
    with Shop("s", home).store(create=False) as store:
        assert load_config(store) == RerankConfig(diversity=0.2)
    assert rules(home, "set-diversity", "0") == 0
    assert "(off)" in capsys.readouterr().out
    assert rules(home, "set-diversity", "1.5") == 1
    assert "diversity must lie between 0" in capsys.readouterr().err
    with Shop("s", home).store(create=False) as store:
        assert load_config(store).diversity == 0.0


def test_unknown_shop(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["rules", "list", "--shop", "nope", "--home", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err
