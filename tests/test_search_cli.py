from __future__ import annotations

import csv

import pytest

from shoprank.cli.main import main
from shoprank.evaluation.trec import read_run
from tests.test_search_engine import trained_shop  # noqa: F401  (module fixture)


def write_csv(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_run_search_writes_a_trec_run(trained_shop, tmp_path, capsys) -> None:  # noqa: F811
    shop, _, _ = trained_shop
    write_csv(tmp_path / "q.csv", ["qid", "query"], [["q1", "cordless drill"], ["q2", "garden hose"]])
    code = main(["run", "search", "--shop", shop.name, "--home", str(shop.home), "--queries",
                 str(tmp_path / "q.csv"), "--out", str(tmp_path / "run.txt"), "--top", "5", "--quiet"])
    assert code == 0
    lines = (tmp_path / "run.txt").read_text().splitlines()
    assert len(lines) == 10
    qid, q0, pid, rank, score, tag = lines[0].split()
    assert (qid, q0, rank, tag) == ("q1", "Q0", "1", "shoprank") and pid.startswith("drill-")
    float(score)
    run = read_run(tmp_path / "run.txt")
    assert all(pid.startswith("hose-") for pid, _ in run["q2"][:3])
    assert "queries/s" in capsys.readouterr().out


def test_run_rerank_orders_given_products(trained_shop, tmp_path) -> None:  # noqa: F811
    shop, _, _ = trained_shop
    rows = [["a", "cordless drill", "hose-1"], ["a", "cordless drill", "drill-1"], ["a", "cordless drill", "nope"],
            ["b", "paint", "paint-2"], ["b", "paint", "saw-2"]]
    write_csv(tmp_path / "pairs.csv", ["qid", "query", "product_id"], rows)
    code = main(["run", "rerank", "--shop", shop.name, "--home", str(shop.home), "--pairs",
                 str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "run.txt"), "--quiet"])
    assert code == 0
    run = read_run(tmp_path / "run.txt")
    assert [pid for pid, _ in run["a"]] == ["drill-1", "hose-1", "nope"]
    assert [pid for pid, _ in run["b"]][0] == "paint-2"
    ranks = [line.split()[3] for line in (tmp_path / "run.txt").read_text().splitlines()]
    assert ranks == ["1", "2", "3", "1", "2"]


def test_bad_csv_header_is_a_clear_error(trained_shop, tmp_path, capsys) -> None:  # noqa: F811
    shop, _, _ = trained_shop
    write_csv(tmp_path / "q.csv", ["id", "text"], [["1", "x"]])
    code = main(["run", "search", "--shop", shop.name, "--home", str(shop.home), "--queries",
                 str(tmp_path / "q.csv"), "--out", str(tmp_path / "run.txt")])
    assert code == 1
    assert "qid, query" in capsys.readouterr().err


@pytest.mark.parametrize("group", ["train", "evaluate", "run"])
def test_help_lists_search(group, capsys) -> None:
    with pytest.raises(SystemExit):
        main([group, "--help"])
    assert "search" in capsys.readouterr().out


def test_cross_encoder_options_override_the_profile() -> None:
    from shoprank.search.publish import SearchTraining
    from shoprank.search.train import profile_config

    config = SearchTraining(profile="quick", cross_pairs=0, cross_epochs=2, cross_lr=3e-5, cross_freeze="none",
                            cross_eval_every=50).config("en")
    assert config.max_cross_pairs is None  # 0: every labelled pair
    assert (config.cross.epochs, config.cross.learning_rate, config.cross.freeze) == (2, 3e-5, "none")
    assert config.cross_eval_every == 50
    assert SearchTraining(profile="quick").config("en") == profile_config("quick")  # no override: the profile
    assert SearchTraining(profile="quick", cross_encoder=False, cross_epochs=3).config("en").cross is None
    with pytest.raises(ValueError, match="cross-epochs"):
        SearchTraining(profile="quick", cross_epochs=0)
    with pytest.raises(ValueError, match="cross_freeze must be one of none, lower, all"):
        SearchTraining(cross_freeze="half")


def test_fusion_queries_option_overrides_the_profile() -> None:
    from shoprank.search.publish import SearchTraining
    from shoprank.search.train import profile_config

    assert profile_config("quick").max_fusion_queries == 150
    assert SearchTraining(profile="quick", fusion_queries=0).config("en").max_fusion_queries is None  # 0: every one
    assert SearchTraining(profile="quick", fusion_queries=40).config("en").max_fusion_queries == 40
    assert SearchTraining(profile="quick").config("en").max_fusion_queries == 150
    with pytest.raises(ValueError, match="fusion-queries"):
        SearchTraining(profile="quick", fusion_queries=-1)
    full = profile_config("full")  # the measured Home Depot run: every fusion query, every layer of the CE
    assert (full.max_fusion_queries, full.max_cross_pairs, full.cross.freeze) == (None, 20000, "none")
