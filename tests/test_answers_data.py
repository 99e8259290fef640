"""The FAQ contract, file ingestion, store methods and the matcher's pure parts, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shoprank.answers.engine import fill
from shoprank.answers.ingest import ingest_conversations, ingest_faq, read_faq
from shoprank.answers.records import Conversation, FaqEntry, parse_faq_entry
from shoprank.answers.train import (
    OUT_OF_SCOPE,
    AnswerTrainConfig,
    choose_threshold,
    fit_temperature,
    split_questions,
)
from shoprank.data.ingest import IngestError
from shoprank.data.records import RecordError
from shoprank.evaluation.metrics import accuracy, expected_calibration_error, f1_binary, macro_f1
from shoprank.store.sqlite import SQLiteStore


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_entry_needs_questions_and_an_answer() -> None:
    with pytest.raises(RecordError) as err:
        parse_faq_entry({"id": "a", "answer": "x", "questions": []})
    assert err.value.field == "questions"
    with pytest.raises(RecordError) as err:
        parse_faq_entry({"id": "a", "questions": ["q"]})
    assert err.value.field == "answer"
    with pytest.raises(RecordError) as err:
        parse_faq_entry({"id": "a", "answer": "x", "questions": ["ok", ""]})
    assert err.value.field == "questions[1]"
    with pytest.raises(RecordError) as err:
        parse_faq_entry({"id": "a", "answer": "x", "questions": ["q"], "colour": "red"})
    assert err.value.field == "colour"
    entry = parse_faq_entry({"id": "a", "answer": " Open {hours}, see {url} ", "questions": ["q", "q", "r"]})
    assert entry.questions == ("q", "r") and entry.answer == "Open {hours}, see {url}"
    assert entry.placeholders == ["hours", "url"]


def test_placeholders_are_filled_or_listed() -> None:
    assert fill("Open {hours}, see {url}", {"hours": "9-5"}) == ("Open 9-5, see {url}", ["url"])


def test_jsonl_faq_and_its_bad_lines(tmp_path: Path) -> None:
    good = write(tmp_path / "faq.jsonl", "\n".join(json.dumps(e) for e in [
        {"id": "a", "answer": "A", "questions": ["q1", "q2", "q3"]},
        {"id": "b", "answer": "B", "questions": ["q4"], "search": True}]))
    entries = read_faq(good)
    assert [e.id for e in entries] == ["a", "b"] and entries[1].search
    bad = write(tmp_path / "bad.jsonl", "\n".join([
        json.dumps({"id": "a", "answer": "A", "questions": ["q"]}),
        json.dumps({"id": "b", "answer": "B", "questions": []}),
        json.dumps({"id": "a", "answer": "A2", "questions": ["q"]}),
        "{not json"]))
    with pytest.raises(IngestError) as err:
        read_faq(bad)
    found = [(e.line, e.field) for e in err.value.errors]
    assert found == [(2, "questions"), (3, "id"), (4, "<json>")]
    assert "first on line 1" in err.value.errors[1].message


def test_csv_faq_groups_rows_by_id(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.csv", "id,question,answer\nship,how long is shipping,Two days.\n"
                 "pay,can I pay by card,Yes.\nship,when does it arrive,\nship,delivery time,Two days.\n")
    entries = read_faq(path)
    assert [(e.id, e.questions, e.answer) for e in entries] == [
        ("ship", ("how long is shipping", "when does it arrive", "delivery time"), "Two days."),
        ("pay", ("can I pay by card",), "Yes.")]
    conflicting = write(tmp_path / "c.csv", "id,question,answer\na,q1,One\nb,q2,\na,q3,Other\n")
    with pytest.raises(IngestError) as err:
        read_faq(conflicting)
    assert [(e.line, e.field) for e in err.value.errors] == [(4, "answer"), (3, "answer")]
    with pytest.raises(IngestError) as err:
        read_faq(write(tmp_path / "cols.csv", "id,text\na,b\n"))
    assert {e.field for e in err.value.errors} == {"question", "answer"}
    with pytest.raises(IngestError) as err:
        read_faq(write(tmp_path / "empty.csv", "id,question,answer\na,,One\n"))
    assert [(e.line, e.field) for e in err.value.errors] == [(2, "question")]


def test_store_replaces_or_merges_and_a_bad_file_stores_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    first = ingest_faq(store, write(tmp_path / "f.jsonl", json.dumps({"id": "a", "answer": "A", "questions": ["q"]})
                                    + "\n" + json.dumps({"id": "b", "answer": "B", "questions": ["r"]})))
    assert (first.stored, first.updated, first.removed) == (2, 0, 0)
    with pytest.raises(IngestError):
        ingest_faq(store, write(tmp_path / "bad.jsonl", json.dumps({"id": "c", "answer": "C", "questions": ["s"]})
                                + "\n" + json.dumps({"id": "d", "answer": "", "questions": ["t"]})))
    assert [e.id for e in store.faq_entries()] == ["a", "b"]  # nothing of the bad file
    merged = store.put_faq([FaqEntry("c", "C", ("s",)), FaqEntry("a", "A2", ("q",))], replace=False)
    assert (merged.stored, merged.updated) == (1, 1)
    assert [(e.id, e.answer) for e in store.faq_entries()] == [("a", "A2"), ("b", "B"), ("c", "C")]
    replaced = store.put_faq([FaqEntry("b", "B", ("r",))])
    assert (replaced.stored, replaced.updated, replaced.removed) == (0, 1, 2)
    assert [e.id for e in store.faq_entries()] == ["b"]
    conv = write(tmp_path / "c.csv", "question,faq_id\nhi there,b\nhi there,b\nweather?,\n")
    result = ingest_conversations(store, conv)
    assert (result.stored, result.duplicates) == (2, 1)
    assert store.conversations() == [Conversation("hi there", "b"), Conversation("weather?", None)]
    with pytest.raises(IngestError) as err:
        ingest_conversations(store, write(tmp_path / "u.csv", "question,faq_id\nok,b\nwho,zzz\n"))
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "faq_id")]
    assert len(store.conversations()) == 2
    store.close()


def test_split_keeps_entries_with_few_questions_in_training() -> None:
    entries = [FaqEntry("a", "A", ("a1", "a2", "a3")), FaqEntry("b", "B", ("b1", "b2")),
               FaqEntry("c", "C", tuple(f"c{i}" for i in range(30)))]
    ids, train, val = split_questions(entries, [Conversation("x", None), Conversation("a4", "a")],
                                      AnswerTrainConfig())
    assert ids == ["a", "b", "c"]
    counts = {i: val.labels.count(i) for i in (0, 1, 2, OUT_OF_SCOPE)}
    assert counts == {0: 1, 1: 0, 2: 3, OUT_OF_SCOPE: 1}
    assert sorted(train.texts + val.texts) == sorted(["a1", "a2", "a3", "a4", "b1", "b2", "x"] +
                                                     [f"c{i}" for i in range(30)])


def test_temperature_recovers_the_one_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, size=(20_000, 5))
    z = np.exp((scores - scores.max(1, keepdims=True)) / 2.0)
    probs = z / z.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    assert fit_temperature(scores, labels) == pytest.approx(2.0, rel=0.06)
    assert fit_temperature(scores[:5], labels[:5]) == 1.0  # too few to calibrate


def test_threshold_choice_by_hand() -> None:
    conf_in = np.array([0.9, 0.8, 0.6, 0.4])
    correct = np.array([True, True, True, False])
    conf_oos = np.array([0.5, 0.3])
    # t = 0.6: answered correctly 3/4, out-of-scope caught 2/2 -> 0.8 * 0.75 + 0.2 * 1.0 = 0.8 (the best)
    t, info = choose_threshold(conf_in, correct, conf_oos, oos_share=0.2, max_handoff=0.05)
    assert t == pytest.approx(0.6) and info["val_oos_recall"] == 1.0
    t, info = choose_threshold(conf_in, correct, np.array([]), oos_share=0.2, max_handoff=0.25)
    assert t == pytest.approx(np.quantile(conf_in, 0.25)) and info["val_handoff_in_scope"] == 0.25


def test_classification_metrics_by_hand() -> None:
    assert accuracy([1, 2, 3, 3], [1, 2, 2, 3]) == 0.75
    assert f1_binary([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5
    assert macro_f1(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert expected_calibration_error(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 1, 1, 0])) == \
        pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
