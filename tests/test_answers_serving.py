"""Answers end to end on the tiny shop: a matcher trained on a 4-entry FAQ (frozen MiniLM, prototypes fitted),
served over HTTP and the CLI; known answers, hand-overs, products for product questions, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.answers.engine import AnswerEngine
from shoprank.answers.examples import tiny_answers
from shoprank.cli.main import main
from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from shoprank.shops import Shop
from tests.support.fakes import FAKE_LOADERS, tiny_shop

KNOWN = {"I'd like my money back": "returns", "do you take mastercard": "payment",
         "have you got a drill for sale": "products", "when will my order get here": "shipping"}
OUT_OF_SCOPE = ["how tall is mount everest", "sing me a song"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("answers-home")
    shop = tiny_shop(home, "tiny")
    tiny_answers(shop)
    return home


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def served(home: Path) -> tuple[Any, str]:
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    return app, key


def client(app: Any, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)


def test_engine_known_answers_and_handoffs(home: Path) -> None:
    engine = AnswerEngine.load(Shop("tiny", home))
    answers = engine.answer(list(KNOWN) + OUT_OF_SCOPE)
    assert [a.faq_id for a in answers[: len(KNOWN)]] == list(KNOWN.values())
    assert all(not a.handoff and 0 < a.confidence <= 1 for a in answers[: len(KNOWN)])
    assert all(a.handoff and a.faq_id is None for a in answers[len(KNOWN):])
    shipping = answers[3]
    assert shipping.text.startswith("Orders ship within {ship_days}")  # no values given here
    from shoprank.answers.model import AnswerModel

    model = engine.model  # MiniLM alone answers every validation question: the E5 blend was tried and declined
    assert isinstance(model, AnswerModel) and 0 < model.threshold < 1 and model.params.encoder == "minilm"


def test_a_blended_matcher_serves_from_its_folder(home: Path, tmp_path: Path) -> None:
    from shoprank.answers.examples import TINY_FAQ
    from shoprank.answers.model import BlendedMatcher, load_matcher
    from shoprank.answers.train import AnswerTrainConfig, split_questions, train_matcher

    minilm = AnswerEngine.load(Shop("tiny", home)).model
    config = AnswerTrainConfig(encoder="e5", progress=False)
    ids, train, val = split_questions(TINY_FAQ, [], config)
    e5, report = train_matcher(ids, train, val, config)
    assert report.encoder == "e5" and report.blend == {}  # E5 itself is never blended
    BlendedMatcher([minilm, e5], [0.5, 0.5], temperature=1.0, threshold=0.3).save(tmp_path / "blend")
    engine = AnswerEngine(load_matcher(tmp_path / "blend"), TINY_FAQ)
    assert isinstance(engine.model, BlendedMatcher)
    assert [a.faq_id for a in engine.answer(list(KNOWN))] == list(KNOWN.values())


def test_save_load_same_output(home: Path, tmp_path: Path) -> None:
    from shoprank.answers.model import load_matcher

    engine = AnswerEngine.load(Shop("tiny", home))
    engine.model.save(tmp_path / "m")
    again = load_matcher(tmp_path / "m")
    questions = list(KNOWN) + OUT_OF_SCOPE
    assert again.probabilities(questions) == pytest.approx(engine.model.probabilities(questions), abs=1e-6)


@pytest.mark.anyio
async def test_answer_endpoint(home: Path) -> None:
    app, key = served(home)
    async with client(app, key) as c:
        r = await c.get("/shops/tiny/answer", params={"q": "when will my order get here"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"]["faq_id"] == "shipping" and not body["handoff"]
        assert body["answer"]["text"] == "Orders ship within 2 working days; you get a tracking link by e-mail."
        assert body["products"] == [] and len(body["alternatives"]) == 3
        r = await c.get("/shops/tiny/answer", params={"q": "have you got a drill for sale"})
        body = r.json()
        assert body["answer"]["faq_id"] == "products"
        assert body["products"] and "Drill" in body["products"][0]["title"]  # the search engine's products
        r = await c.get("/shops/tiny/answer", params={"q": "sing me a song"})
        body = r.json()
        assert body["answer"] is None and body["handoff"] and body["alternatives"][0]["confidence"] < 1
        empty = await c.get("/shops/tiny/answer", params={"q": "  "})
        assert empty.status_code == 422 and empty.json()["error"]["field"] == "q"
        huge = await c.get("/shops/tiny/answer", params={"q": "refund " * 2000})
        assert huge.status_code == 200 and len(huge.json()["query"]) == 1000
        none = await c.get("/shops/nope/answer", params={"q": "x"})
        assert none.status_code == 404
    app.state.registry.close()


@pytest.mark.anyio
async def test_faq_put_validates_whole_batches(home: Path) -> None:
    app, key = served(home)
    reader, _ = KeyStore(home).create("search", "tiny")
    async with client(app, key) as c:
        bad = await c.put("/shops/tiny/faq", json={"entries": [
            {"id": "a", "answer": "A", "questions": ["q"]},
            {"id": "b", "answer": "B", "questions": []},
            {"id": "a", "answer": "A again", "questions": ["q"]}]})
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["field"] == "entries[1].questions"
        assert [d["field"] for d in error["details"]] == ["entries[1].questions", "entries[2].id"]
        assert len((await c.get("/shops/tiny/faq")).json()["entries"]) == 4  # nothing stored
        edited = {"id": "returns", "answer": "Returns are free for {days} days.", "questions": ["can I return it"]}
        ok = await c.put("/shops/tiny/faq", json={"entries": [edited], "replace": False, "values": {"days": "60"}})
        assert ok.status_code == 200 and ok.json() == {"stored": 0, "updated": 1, "removed": 0, "entries": 4}
        r = await c.get("/shops/tiny/answer", params={"q": "I'd like my money back"})
        assert r.json()["answer"]["text"] == "Returns are free for 60 days."  # edited text served at once
        assert r.json()["answer"]["placeholders"] == []
        conv = await c.post("/shops/tiny/conversations", json={"conversations": [
            {"question": "refund please", "faq_id": "returns"}, {"question": "x", "faq_id": "nope"}]})
        assert conv.status_code == 422 and conv.json()["error"]["field"] == "conversations[1].faq_id"
        conv = await c.post("/shops/tiny/conversations", json={"conversations": [
            {"question": "refund please", "faq_id": "returns"}, {"question": "is it raining", "faq_id": None}]})
        assert conv.json() == {"stored": 2, "duplicates": 0}
    async with client(app, reader) as c:
        assert (await c.get("/shops/tiny/answer", params={"q": "refund"})).status_code == 200
        denied = await c.put("/shops/tiny/faq", json={"entries": [edited]})
        assert denied.status_code == 403
    app.state.registry.close()


@pytest.mark.anyio
async def test_no_model_and_bad_bundle(home: Path) -> None:
    shop = Shop("tiny", home)
    app, key = served(home)
    async with client(app, key) as c:
        assert (await c.get("/shops/tiny/answer", params={"q": "refund"})).status_code == 200
        # a newer bundle that is corrupt: refused, the last good one keeps answering
        from shoprank.bundles import latest_version, publish

        good = latest_version(shop.models_path, "answers")
        with publish(shop.models_path, "answers") as folder:
            (folder / "faq.jsonl").write_text("")
        r = await c.get("/shops/tiny/answer", params={"q": "I'd like my money back"})
        assert r.status_code == 200 and r.json()["model_version"] == good
    shutil.rmtree(shop.models_path / "answers")
    app, key = served(home)
    async with client(app, key) as c:
        r = await c.get("/shops/tiny/answer", params={"q": "refund"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_answers_model"


def test_cli_ingest_and_run(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("id,question,answer\nx,q1,X\ny,q2,\n", encoding="utf-8")
    assert main(["ingest", "faq", str(faq), "--shop", "tiny", "--home", str(home)]) == 1
    assert "line 3: field 'answer'" in capsys.readouterr().err
    with Shop("tiny", home).store() as store:
        assert len(store.faq_entries()) == 4  # nothing of the bad file
    questions = tmp_path / "q.csv"
    with questions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["qid", "question"])
        for i, q in enumerate(list(KNOWN) + OUT_OF_SCOPE):
            writer.writerow([f"q{i}", q])
    out = tmp_path / "out.csv"
    assert main(["run", "answer", "--shop", "tiny", "--home", str(home), "--questions", str(questions),
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["faq_id"] for r in rows] == [*KNOWN.values(), "", ""]
    assert [r["handoff"] for r in rows] == ["false"] * 4 + ["true"] * 2
    capsys.readouterr()
    assert main(["answer", "do you take mastercard", "--shop", "tiny", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"]["faq_id"] == "payment"
    good = tmp_path / "faq.jsonl"
    good.write_text(json.dumps({"id": "hours", "answer": "9 to 5", "questions": ["when are you open"]}) + "\n")
    assert main(["ingest", "faq", str(good), "--shop", "tiny", "--home", str(home), "--merge"]) == 0
    assert "1 new, 0 updated, 0 removed entries; 5 in all" in capsys.readouterr().out


def test_cli_train_refits_on_every_question_unless_told_not_to(home: Path, capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    args = ["train", "answers", "--shop", "tiny", "--home", str(home), "--freeze", "all", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # 4 entries x 5 questions: one each validates, 4 train, plus the 4 answer texts; the refit adds the 4 back
    assert "20 training and 4 validation questions" in out and "then trained again on all 24 questions" in out
    assert "not blended with the frozen E5: validation accuracy MiniLM 1.000" in out  # tried, declined
    assert main([*args, "--no-refit", "--no-answer-examples", "--e5-weight", "0"]) == 0
    out = capsys.readouterr().out
    assert "16 training and 4 validation questions" in out and "trained again" not in out and "E5" not in out
    from shoprank.bundles import MANIFEST, latest_version

    models = Shop("tiny", home).models_path
    manifest = json.loads((models / "answers" / (latest_version(models, "answers") or "") / MANIFEST).read_text())
    report = manifest["params"]["report"]
    assert report["refit"] == {} and report["blend"] == {} and report["train_questions"] == 16
