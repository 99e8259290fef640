"""The diversity sweep: the default rule on known rows, the writers, and ``evaluate ... --diversity-sweep``
end to end on a tiny trained recommend shop and a tiny trained search shop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shoprank.cli.main import main
from shoprank.experiments.diversity_report import format_table, write_plot, write_table
from shoprank.experiments.diversity_sweep import (
    Choice,
    SweepResult,
    SweepRow,
    choose_default,
    parse_lambdas,
)
from tests.test_search_engine import trained_shop  # noqa: F401  (module fixture)

PNG = b"\x89PNG\r\n\x1a\n"


def row(lam: float, ndcg: float, ild: float) -> SweepRow:
    return SweepRow(lam, ndcg, hr=2 * ndcg, ild=ild, category_coverage=0.1, catalogue_coverage=0.5, novelty=9.5)


def test_the_most_diverse_lambda_within_the_budget_is_picked() -> None:
    rows = [row(0, 0.500, 0.40),
            row(0.1, 0.498, 0.47),  # −0.4 % NDCG, +17.5 % ILD: qualifies
            row(0.2, 0.496, 0.50),  # −0.8 %, +25 %: qualifies, more diverse
            row(0.3, 0.490, 0.60)]  # −2 %: over the budget
    choice = choose_default(rows)
    assert choice.lam == 0.2
    assert "0.4960 vs 0.5000 (-0.8%)" in choice.reason and "0.5000 vs 0.4000 (+25.0%)" in choice.reason


def test_when_no_lambda_qualifies_the_reason_gives_the_numbers() -> None:
    rows = [row(0, 0.500, 0.40),
            row(0.2, 0.498, 0.416),  # inside the NDCG budget, only +4 % ILD
            row(0.7, 0.450, 0.48)]  # +20 % ILD, but −10 % NDCG
    choice = choose_default(rows)
    assert choice.lam is None
    assert "no λ keeps NDCG@10 within 1% while raising ILD@10 by 15%" in choice.reason
    assert "λ = 0.2: NDCG@10 -0.4%, ILD@10 +4.0%" in choice.reason
    assert "λ = 0.7: NDCG@10 -10.0%, ILD@10 +20.0%" in choice.reason
    assert "the most ILD@10 is +4.0%, at λ = 0.2" in choice.reason


def test_the_rule_needs_a_baseline_and_lambdas_are_checked() -> None:
    with pytest.raises(ValueError, match="λ = 0"):
        choose_default([row(0.1, 0.5, 0.5)])
    assert choose_default([row(0, 0.5, 0.4)]).lam is None
    assert parse_lambdas("0.3,0.1,0.1") == [0.0, 0.1, 0.3]
    with pytest.raises(ValueError, match="between 0"):
        parse_lambdas("0,1.5")
    with pytest.raises(ValueError, match="separated by commas"):
        parse_lambdas("0;0.1")


def test_table_and_plot_files(tmp_path) -> None:  # noqa: ANN001
    rows = [row(0, 0.500, 0.40), row(0.2, 0.498, 0.416)]
    result = SweepResult("recommend", "tiny", "v1", sampled=10, available=20, items=40, rows=rows, ranker_ndcg=0.5)
    assert SweepResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| λ") and "| 0.2 " in table and "−0.4 %" in table and "+4.0 %" in table
    md = write_table(result, Choice(None, "no λ qualifies"), tmp_path / "sub" / "t.md", "shoprank evaluate ...")
    assert md.is_file() and table in md.read_text() and "none qualifies" in md.read_text()
    png = write_plot({"recommend": rows, "search": rows}, tmp_path / "sub" / "p.png")
    assert png.read_bytes()[:8] == PNG


# ---------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rec_home(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from tests.test_recommend_service import make_shop

    folder = tmp_path_factory.mktemp("rec-home")
    make_shop(folder)
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(folder), "--encoder", "hash:64",
                 "--epochs", "2", "--threads", "1", "--quiet"]) == 0
    return folder


def unreranked_recommend_ndcg(home) -> float:  # noqa: ANN001
    """NDCG@10 of the served recommender's own first 10 (no re-ranking) for every test user, computed here."""
    from shoprank.data.records import Event
    from shoprank.evaluation.metrics import ndcg_at_k
    from shoprank.recommend.interactions import TYPE_INDEX
    from shoprank.recommend.pipeline import read_log
    from shoprank.recommend.service import Recommender
    from shoprank.shops import Shop

    shop = Shop("tiny", home)
    rec, split = Recommender.load(shop), read_log(shop).split()
    names = {v: k for k, v in TYPE_INDEX.items()}
    values = []
    for hist, types, target in zip(split.test_histories.items, split.test_histories.types, split.test_targets,
                                   strict=True):
        events = [Event(f"e{n}", "", rec.catalogue.ids[int(i) - 1], names[int(t)], float(n))
                  for n, (i, t) in enumerate(zip(hist, types, strict=True))]
        ranked = [item.id for item in rec.recommend("", k=10, history=events)]
        values.append(ndcg_at_k(ranked, {rec.catalogue.ids[int(target) - 1]: 1.0}, 10))
    return float(np.mean(values))


def test_evaluate_recommend_diversity_sweep(rec_home, tmp_path, capsys) -> None:  # noqa: ANN001
    report = tmp_path / "sweep.json"
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(rec_home), "--diversity-sweep",
                 "--lambdas", "0.5,1", "--sample", "0", "--json", str(report), "--part", "test"]) == 0
    out = capsys.readouterr().out
    assert "| λ" in out and "NDCG vs λ=0" in out and "no default is chosen here" in out
    plot, table = rec_home / "tiny" / "reports" / "diversity-sweep-recommend.png", \
        rec_home / "tiny" / "reports" / "diversity-sweep-recommend.md"
    assert f"wrote the plot to {plot} and the table to {table}" in out
    assert plot.read_bytes()[:8] == PNG and "--diversity-sweep" in table.read_text()
    saved = json.loads(report.read_text())
    rows = saved["rows"]
    assert [r["lambda"] for r in rows] == [0.0, 0.5, 1.0] and saved["users"] == saved["test_users"] == 120
    assert rows[0]["ndcg@10"] == saved["ranker_ndcg@10"]  # λ = 0 is the ranker, exactly
    assert rows[0]["ndcg@10"] == pytest.approx(unreranked_recommend_ndcg(rec_home), abs=1e-12)
    assert "λ = 0 reproduces the ranker's own NDCG@10" in out
    for r in rows:
        assert 0 <= r["ndcg@10"] <= r["hr@10"] <= 1 and 0 <= r["ild@10"] <= 2 and r["novelty"] > 0
        assert 0 < r["catalogue_coverage@10"] <= 1 and 0 < r["category_coverage@10"] <= 1
    assert rows[-1]["ild@10"] > rows[0]["ild@10"]  # λ = 1: variety only
    assert saved["why"] and ("chosen" in saved) and saved["part"] == "test"


def test_the_recommend_default_is_chosen_on_validation_targets(rec_home, tmp_path, capsys) -> None:  # noqa: ANN001
    from shoprank.recommend.pipeline import read_log
    from shoprank.shops import Shop

    report = tmp_path / "valid.json"
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(rec_home), "--diversity-sweep",
                 "--lambdas", "0.5", "--sample", "0", "--json", str(report)]) == 0
    assert "default" in capsys.readouterr().out
    saved = json.loads(report.read_text())
    split = read_log(Shop("tiny", rec_home)).split()
    assert saved["part"] == "valid" and saved["users"] == len(split.valid_targets)
    assert saved["rows"][0]["ndcg@10"] == saved["ranker_ndcg@10"]  # the shop has no rule: λ = 0 is the ranker


def test_sweep_without_a_model_says_what_to_train(tmp_path, capsys) -> None:  # noqa: ANN001
    from tests.test_recommend_service import make_shop

    make_shop(tmp_path, n_users=3)
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(tmp_path), "--diversity-sweep"]) == 1
    err = capsys.readouterr().err
    assert "shoprank train recommend" in err and "never trains" in err
    assert not (tmp_path / "tiny" / "reports").exists()


def test_sweep_options_need_the_flag(tmp_path, capsys) -> None:  # noqa: ANN001
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(tmp_path), "--lambdas", "0,0.2"]) == 1
    assert "--lambdas only apply with --diversity-sweep" in capsys.readouterr().err


def test_evaluate_search_diversity_sweep(trained_shop, tmp_path, capsys) -> None:  # noqa: F811
    from shoprank.cascade.load import load_search
    from shoprank.evaluation.metrics import ndcg_at_k
    from shoprank.search.data import SPLIT_SEED, load_search_data

    shop, _, _ = trained_shop
    plot, table, report = tmp_path / "s.png", tmp_path / "s.md", tmp_path / "s.json"
    assert main(["evaluate", "search", "--shop", shop.name, "--home", str(shop.home), "--diversity-sweep",
                 "--lambdas", "0,0.5,1", "--sample", "0", "--plot", str(plot), "--table", str(table),
                 "--json", str(report), "--quiet", "--part", "test"]) == 0
    out = capsys.readouterr().out
    assert f"wrote the plot to {plot} and the table to {table}" in out
    assert plot.read_bytes()[:8] == PNG and "| 0.5 " in table.read_text()
    saved = json.loads(report.read_text())
    rows = saved["rows"]
    assert [r["lambda"] for r in rows] == [0.0, 0.5, 1.0] and saved["queries"] == saved["test_queries"] > 0

    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=0.2, seed=SPLIT_SEED)
    test = data.query_set(data.test)
    engine = load_search(shop)  # as served
    queries = [q for q in test.queries() if max(test.gains[q].values()) > 0]
    plain = np.mean([ndcg_at_k([h.id for h in engine.search(q, k=10)[0]], test.gains[q], 10) for q in queries])
    assert rows[0]["ndcg@10"] == saved["ranker_ndcg@10"] == pytest.approx(plain, abs=1e-12)
    assert rows[-1]["ild@10"] >= rows[0]["ild@10"]
    assert all(0 <= r["ndcg@10"] <= 1 and 0 <= r["hr@10"] <= 1 for r in rows)

    from shoprank.bundles import open_bundle
    from shoprank.experiments.diversity_sweep import validation_queries

    assert main(["evaluate", "search", "--shop", shop.name, "--home", str(shop.home), "--diversity-sweep",
                 "--lambdas", "0.5", "--sample", "0", "--json", str(report), "--quiet"]) == 0
    saved = json.loads(report.read_text())
    valid = data.query_set(validation_queries(shop, open_bundle(shop.models_path, "search").params, data))
    assert saved["part"] == "valid" and not set(valid.queries()) & set(test.queries())
    assert saved["queries"] == len([q for q in valid.queries() if max(valid.gains[q].values()) > 0]) > 0
