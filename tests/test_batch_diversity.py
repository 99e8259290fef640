"""``run search|rerank|recommend --diversity L``: the re-ranker over an over-fetched list, written as a TREC run."""

from __future__ import annotations

import csv

import pytest

from shoprank.cascade import DEPTH
from shoprank.cli._rerank import rerank_pairs
from shoprank.cli.main import main
from shoprank.evaluation.trec import read_run
from shoprank.rerank import RerankConfig, Reranker, Rule, RuleSet, load_rules, save_rules
from tests.test_search_engine import trained_shop  # noqa: F401  (module fixture)


def write_queries(path, rows) -> None:  # noqa: ANN001
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["qid", "query"])
        writer.writerows(rows)


def run_search(shop, tmp_path, *extra: str) -> dict:  # noqa: ANN001
    queries = tmp_path / "q.csv"
    write_queries(queries, [["q1", "cordless drill"], ["q2", "garden hose"], ["q3", "paint"]])
    out = tmp_path / f"run{'-'.join(extra)}.txt"
    assert main(["run", "search", "--shop", shop.name, "--home", str(shop.home), "--queries", str(queries),
                 "--out", str(out), "--top", "4", "--quiet", *extra]) == 0
    return read_run(out)


def test_rerank_pairs_keeps_the_reranked_order_in_the_scores() -> None:
    ranked = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    rules = RuleSet((Rule(id=4, action="pin", products=("c",), position=1),))
    out = rerank_pairs(Reranker(RerankConfig(diversity=0.0), rules), ranked, {}, None, None, 2)
    assert [pid for pid, _ in out] == ["c", "a"]
    assert out[0][1] >= out[1][1]  # a TREC run is read in score order


def test_diversity_zero_is_the_ranker_and_any_lambda_only_reorders_its_candidates(
        trained_shop, tmp_path) -> None:  # noqa: F811
    from shoprank.cascade.load import load_search

    shop, _, _ = trained_shop
    engine = load_search(shop)  # the engine as the server loads it: the batch run answers as the server does
    off = run_search(shop, tmp_path, "--diversity", "0")
    full = run_search(shop, tmp_path, "--diversity", "1")
    for qid, query in (("q1", "cordless drill"), ("q2", "garden hose"), ("q3", "paint")):
        assert [pid for pid, _ in off[qid]] == [pid for pid, _ in engine.search_ids(query, 4)]
        candidates = {pid for pid, _ in engine.search_ids(query, DEPTH)}
        assert len(full[qid]) == 4 and {pid for pid, _ in full[qid]} <= candidates
        assert full[qid][0][0] == off[qid][0][0]  # MMR never moves the top item


def test_the_shops_rules_apply_to_batch_runs(trained_shop, tmp_path) -> None:  # noqa: F811
    shop, _, _ = trained_shop
    first = run_search(shop, tmp_path, "--diversity", "0")["q1"][0][0]
    with shop.store(create=False) as store:
        before = load_rules(store)
        save_rules(store, before.with_rule(Rule(id=before.next_id(), action="hide", products=(first,))))
    try:
        hidden = run_search(shop, tmp_path, "--diversity", "0")
    finally:
        with shop.store(create=False) as store:
            save_rules(store, before)
    assert first not in {pid for pid, _ in hidden["q1"]}


def test_bad_diversity_is_a_clear_error(trained_shop, tmp_path, capsys) -> None:  # noqa: F811
    shop, _, _ = trained_shop
    write_queries(tmp_path / "q.csv", [["q1", "drill"]])
    code = main(["run", "search", "--shop", shop.name, "--home", str(shop.home), "--queries",
                 str(tmp_path / "q.csv"), "--out", str(tmp_path / "run.txt"), "--diversity", "1.5"])
    assert code == 1
    assert "--diversity" in capsys.readouterr().err


@pytest.fixture(scope="module")
def rec_home(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from tests.test_recommend_service import make_shop

    folder = tmp_path_factory.mktemp("rec-home")
    make_shop(folder)
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(folder), "--encoder", "hash:64",
                 "--epochs", "2", "--threads", "1", "--quiet"]) == 0
    return folder


def test_run_recommend_with_and_without_diversity(rec_home, tmp_path) -> None:  # noqa: ANN001
    from shoprank.recommend.service import Recommender
    from shoprank.shops import Shop

    users = tmp_path / "users.txt"
    users.write_text("u0\nu7\nnobody\n")
    runs = {}
    for lam in ("0", "0.8"):
        out = tmp_path / f"rec-{lam}.run"
        assert main(["run", "recommend", "--shop", "tiny", "--home", str(rec_home), "--users", str(users),
                     "--out", str(out), "--top", "4", "--diversity", lam]) == 0
        runs[lam] = read_run(out)
    rec = Recommender.load(Shop("tiny", rec_home))
    for user in ("u0", "u7", "nobody"):
        assert [pid for pid, _ in runs["0"][user]] == [item.id for item in rec.recommend(user, k=4)]
        candidates = {item.id for item in rec.recommend(user, k=DEPTH)}
        assert len(runs["0.8"][user]) == 4 and {pid for pid, _ in runs["0.8"][user]} <= candidates
