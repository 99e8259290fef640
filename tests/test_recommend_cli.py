"""The recommendation commands end to end on a tiny shop: train, run (TREC format), evaluate."""

from __future__ import annotations

import pytest

from shoprank.cli.main import main
from shoprank.evaluation.trec import read_run
from tests.test_recommend_service import make_shop


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("home")
    make_shop(folder)
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(folder), "--encoder", "hash:64",
                 "--epochs", "3", "--threads", "1", "--quiet"]) == 0
    return folder


def test_train_says_profile_and_time(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(home), "--encoder", "hash:64",
                 "--epochs", "1", "--threads", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "'quick' profile" in out and "published recommend bundle" in out and " s" in out
    logdir = out.split("tensorboard --logdir ")[1].split()[0]
    from pathlib import Path

    assert list(Path(logdir).glob("events.out.tfevents.*"))  # metrics went to TensorBoard


def test_train_with_an_optuna_search(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(home), "--encoder", "hash:64",
                 "--epochs", "1", "--tune", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Optuna search of 2 trials" in out and "best of 2 trials" in out


def test_run_writes_a_trec_run_without_history_items(home, tmp_path) -> None:  # noqa: ANN001
    users = tmp_path / "users.txt"
    users.write_text("u0\nu7\n\nnobody\nu0\n")
    out = tmp_path / "rec.run"
    assert main(["run", "recommend", "--shop", "tiny", "--home", str(home), "--users", str(users),
                 "--out", str(out), "--top", "4"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 12  # three distinct users, 4 items each
    for line in lines:
        qid, q0, doc, rank, score, tag = line.split()
        assert q0 == "Q0" and 1 <= int(rank) <= 4 and float(score) == float(score) and tag
    run = read_run(out)
    assert list(run) == ["u0", "u7", "nobody"]
    from shoprank.shops import Shop

    with Shop("tiny", home).store() as store:
        seen = {e.item_id for e in store.user_events("u0")}
    assert not seen & {doc for doc, _ in run["u0"]}


def test_run_without_a_model_fails_cleanly(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    make_shop(tmp_path, n_users=3)
    users = tmp_path / "users.txt"
    users.write_text("u0\n")
    assert main(["run", "recommend", "--shop", "tiny", "--home", str(tmp_path), "--users", str(users),
                 "--out", str(tmp_path / "r.run")]) == 1
    assert "train recommend" in capsys.readouterr().err


def test_evaluate_prints_one_table(home, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    report = tmp_path / "eval.json"
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(home), "--threads", "1",
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for name in ("random", "most popular", "item-kNN", "implicit ALS", "implicit BPR", "MiniLM", "SASRec"):
        assert name in out
    assert "ndcg@10" in out and "cold_hr@10" in out and "coverage@10" in out and "ild@10" in out
    import json

    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == 7 and all(0 <= r["ndcg@10"] <= 1 for r in rows)


def test_evaluate_by_history_length_measures_every_serving_path(home, tmp_path, capsys) -> None:  # noqa: ANN001
    import json

    report = tmp_path / "eval.json"
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(home), "--models", "itemknn,sasrec",
                 "--by-history", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "new user (whole history hidden)" in out and "history cut to its latest 1" in out
    saved = json.loads(report.read_text())
    rows = {r["protocol"]: r for r in saved["by_history_length"]}
    served = next(r for r in saved["rows"] if "SASRec" in r["model"])
    assert rows["as logged, history 3-5"]["users"] == saved["users"] == 120  # 4 events before the test one
    assert rows["as logged, history 3-5"]["ndcg@10"] == pytest.approx(served["ndcg@10"])
    assert rows["new user (whole history hidden)"]["users"] == 120
    for r in rows.values():
        assert 0 <= r["ndcg@10"] <= r["hr@10"] <= 1


def test_evaluate_on_a_sample_of_test_users(home, tmp_path) -> None:  # noqa: ANN001
    import json

    report = tmp_path / "eval.json"
    assert main(["evaluate", "recommend", "--shop", "tiny", "--home", str(home), "--models", "itemknn,sasrec",
                 "--test-users", "50", "--json", str(report)]) == 0
    saved = json.loads(report.read_text())
    assert saved["users"] == 50 and len(saved["rows"]) == 2


def test_blend_only_keeps_the_model(home, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from shoprank.bundles import latest_version
    from shoprank.shops import Shop

    before = latest_version(Shop("tiny", home).models_path, "recommend")
    assert main(["train", "recommend", "--shop", "tiny", "--home", str(home), "--blend-only"]) == 0
    assert f"model of {before}" in capsys.readouterr().out
    assert latest_version(Shop("tiny", home).models_path, "recommend") != before
