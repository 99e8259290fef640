"""The FAQ contract, file ingestion, store methods and the matcher's pure parts, on tiny data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

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
                                      AnswerTrainConfig(answer_as_question=False))
    assert ids == ["a", "b", "c"]
    counts = {i: val.labels.count(i) for i in (0, 1, 2, OUT_OF_SCOPE)}
    assert counts == {0: 1, 1: 0, 2: 3, OUT_OF_SCOPE: 1}
    assert sorted(train.texts + val.texts) == sorted(["a1", "a2", "a3", "a4", "b1", "b2", "x"] +
                                                     [f"c{i}" for i in range(30)])


def test_an_answer_text_trains_as_one_more_question_of_its_entry() -> None:
    from shoprank.answers.train import answer_question

    assert answer_question("Track it at {order_url} :  card_arrival") == "Track it at : card arrival"
    entries = [FaqEntry("a", "Returns take {days} days", ("a1", "a2", "a3")),
               FaqEntry("b", "b1", ("b1", "b2", "b3")),  # the answer repeats a question: not added twice
               FaqEntry("c", "{only_a_placeholder}", ("c1", "c2", "c3"))]  # nothing left: nothing added
    _, train, val = split_questions(entries, [], AnswerTrainConfig())
    added = [(t, y) for t, y in zip(train.texts, train.labels, strict=True) if not t[1:].isdigit()]
    assert added == [("Returns take days", 0)]
    assert "Returns take days" not in val.texts and len(val) == 3  # validation holds questions only
    assert sorted(train.texts + val.texts).count("b1") == 1
    _, plain, _ = split_questions(entries, [], AnswerTrainConfig(answer_as_question=False))
    assert len(plain) == len(train) - 1
    # an answer two entries share, or one that is another entry's question, would teach two labels: left out
    entries = [FaqEntry("a", "See {help_url}", ("a1", "a2", "a3")), FaqEntry("b", "See {faq_url}", ("b1", "b2")),
               FaqEntry("c", "a1", ("c1", "c2")), FaqEntry("d", "Gift cards never expire", ("d1", "d2"))]
    _, train, _ = split_questions(entries, [], AnswerTrainConfig())
    assert [(t, y) for t, y in zip(train.texts, train.labels, strict=True) if not t[1:].isdigit()] == \
        [("Gift cards never expire", 3)]


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


def test_out_of_scope_examples_train_a_reject_prototype_only_when_there_are_enough() -> None:
    from shoprank.answers.train import split_out_of_scope

    config = AnswerTrainConfig()
    few = [f"oos {i}" for i in range(config.min_reject - 1)]
    assert split_out_of_scope(few, config) == ([], few)  # too few: all validate
    many = [f"oos {i}" for i in range(40)] + ["oos 3"]  # a repeat counts once
    reject, val = split_out_of_scope(many, config)
    assert len(reject) == len(val) == 20 and not set(reject) & set(val) and set(reject) | set(val) == set(many)
    assert split_out_of_scope(many, config) == (reject, val)  # seeded
    assert split_out_of_scope(many, AnswerTrainConfig(reject_share=0.0)) == ([], list(dict.fromkeys(many)))
    with pytest.raises(ValueError, match="reject_share"):
        AnswerTrainConfig(reject_share=1.0)


class AxisEncoder:
    """Known vectors: a question names its axis ("x", "y" or "z") and a small wobble."""

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 3), np.float32)
        for row, text in enumerate(texts):
            axis, wobble = text.split()
            out[row, "xyz".index(axis)] = 1.0
            out[row, ("xyz".index(axis) + 1) % 3] = float(wobble)
        return out


def test_the_reject_prototype_takes_the_out_of_scope_mass_and_never_answers() -> None:
    from shoprank.answers.train import LabelledQuestions, train_matcher

    wobbles = [f"{w:.2f}" for w in np.linspace(-0.2, 0.2, 8)]
    train = LabelledQuestions([f"x {w}" for w in wobbles] + [f"y {w}" for w in wobbles], [0] * 8 + [1] * 8)
    val = LabelledQuestions([f"x {w}" for w in wobbles[:4]] + [f"y {w}" for w in wobbles[:4]] +
                            [f"z {w}" for w in wobbles[:4]], [0] * 4 + [1] * 4 + [OUT_OF_SCOPE] * 4)
    config = AnswerTrainConfig(encoder="minilm", fine_tune=False, progress=False, e5_weight=0.0)
    plain, plain_report = train_matcher(["a", "b"], train, val, config, encoder=AxisEncoder())
    model, report = train_matcher(["a", "b"], train, val, config, encoder=AxisEncoder(),
                                  reject=[f"z {w}" for w in wobbles])
    assert report.reject_questions == 8 and plain_report.reject_questions == 0
    assert model.params.reject and model.prototypes.shape == (3, 3) and plain.prototypes.shape == (2, 3)
    out_of_scope = model.probabilities(["z 0.05", "z -0.1"])
    assert out_of_scope.shape == (2, 2) and (out_of_scope.sum(axis=1) < 0.05).all()  # the mass went to "none"
    assert plain.probabilities(["z 0.05"]).sum() == pytest.approx(1.0)  # without it the entries share it all
    matches = model.match(["x 0.1", "y -0.1", "z 0.0"], k=2)
    assert [m.best for m in matches] == ["a", "b", None] and matches[2].handoff
    assert all(set(m.entry_ids) <= {"a", "b"} for m in matches)  # "none of these" is never an entry
    assert report.val["val_oos_recall"] == 1.0 and report.val["val_answered_correctly"] == 1.0


def test_a_shops_unanswered_conversations_split_between_the_reject_prototype_and_validation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shoprank.answers.train as train_module

    monkeypatch.setattr(train_module, "load_encoder", lambda kind, folder, max_length: AxisEncoder())
    entries = [FaqEntry("a", "A", tuple(f"x 0.0{i}" for i in range(5))),
               FaqEntry("b", "B", tuple(f"y 0.0{i}" for i in range(5)))]
    unanswered = [Conversation(f"z 0.{i:02d}", None) for i in range(24)]
    config = AnswerTrainConfig(encoder="minilm", fine_tune=False, progress=False, answer_as_question=False,
                               e5_weight=0.0)
    model, report = train_module.train_answers(entries, unanswered, config)
    assert (report.reject_questions, report.val_out_of_scope, report.val_questions) == (12, 12, 2)
    assert model.params.reject and model.match(["z 0.5"])[0].handoff
    _, report = train_module.train_answers(entries, unanswered[:10], config)
    assert (report.reject_questions, report.val_out_of_scope) == (0, 10)  # too few: all validate


def test_refit_trains_again_on_the_validation_questions_too() -> None:
    from shoprank.answers.train import LabelledQuestions, best_step, train_matcher

    # entry a is asked along x in training and along z only in validation: without the refit a's prototype
    # never sees z, and "z 0.00" goes to b, whose questions lean towards z ("y 0.30": y with a wobble along z)
    train = LabelledQuestions(["x 0.00", "x 0.05", "y 0.30", "y 0.25"], [0, 0, 1, 1])
    val = LabelledQuestions(["z 0.00", "y 0.20"], [0, 1])
    config = AnswerTrainConfig(encoder="minilm", fine_tune=False, progress=False, e5_weight=0.0)
    refit, report = train_matcher(["a", "b"], train, val, config, encoder=AxisEncoder())
    plain, _ = train_matcher(["a", "b"], train, val, dataclasses.replace(config, refit=False), encoder=AxisEncoder())
    capped, _ = train_matcher(["a", "b"], train, val, dataclasses.replace(config, refit_max_questions=3),
                              encoder=AxisEncoder())
    assert plain.match(["z 0.00"])[0].entry_ids[0] == "b" == capped.match(["z 0.00"])[0].entry_ids[0]
    assert refit.match(["z 0.00"])[0].entry_ids[0] == "a"
    assert refit.params.notes["refit_questions"] == 6 and "refit_questions" not in plain.params.notes
    assert report.val["val_accuracy"] == 0.5  # validation describes the model it chose from, before the refit
    assert best_step([{"step": 1, "loss": 2.0}, {"step": 25, "val/accuracy": 0.5}, {"step": 50, "val/accuracy": 0.7},
                      {"step": 75, "val/accuracy": 0.7}], "val/accuracy", 300) == 50
    assert best_step([{"step": 1, "loss": 2.0}], "val/accuracy", 300) == 300


def test_a_fine_tuned_refit_starts_again_from_the_base_encoder_on_the_validated_schedule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shoprank.answers.train as train_module
    from shoprank.answers.model import load_encoder
    from shoprank.answers.train import LabelledQuestions, train_matcher
    from shoprank.training.loop import TrainConfig, make_optimizer

    entries = {"returns": ["how do I return an item", "can I send this back", "return policy please"],
               "delivery": ["when will my parcel arrive", "where is my order", "shipping time to Paris"]}
    train = LabelledQuestions([q for qs in entries.values() for q in qs[:2]], [0, 0, 1, 1])
    val = LabelledQuestions([qs[2] for qs in entries.values()], [0, 1])
    encoder = load_encoder("minilm", None, 32)
    start = [p.detach().clone() for p in encoder.model.parameters()][:3]
    config = AnswerTrainConfig(encoder="minilm", progress=False, min_steps=8, e5_weight=0.0,
                               train=TrainConfig(epochs=2, batch_size=2, learning_rate=5e-5, patience=2))
    planned: list[int] = []

    def recording(st_model: Any, controls: Any, total_steps: int) -> Any:
        planned.append(total_steps)
        return make_optimizer(st_model, controls, total_steps)

    monkeypatch.setattr(train_module, "make_optimizer", recording)
    model, report = train_matcher(list(entries), train, val, config, encoder=encoder)
    # the validated fit plans 4 epochs of 2 steps (min_steps 8); the refit, 3 steps an epoch on 6 questions, plans
    # the same 4 epochs (its learning rate at the end of each epoch is the validated run's) and stops at the chosen
    assert planned == [8, 12]
    assert model.encoder is not encoder  # the served encoder is the refit copy
    tuned = list(encoder.model.parameters())[:3]  # the validated fit trained this one in place
    assert any(not (a == b).all() for a, b in zip(start, tuned, strict=True))
    notes = model.params.notes
    assert notes["refit_questions"] == 6 and notes["refit_epochs"] < 4 and report.val["val_accuracy"] == 1.0
    assert [m.entry_ids[0] for m in model.match(["I want to return my shoes", "has my package shipped"])] == \
        ["returns", "delivery"]


def test_a_blend_averages_its_members_calibrated_log_probabilities(tmp_path: Path) -> None:
    from shoprank.answers.model import AnswerModel, BlendedMatcher, MatcherParams, load_matcher, softmax

    class Fixed:  # an encoder whose question vectors are given
        def __init__(self, vectors: dict[str, list[float]]) -> None:
            self.vectors = vectors

        def encode_queries(self, texts: list[str]) -> np.ndarray:
            return np.asarray([self.vectors[t] for t in texts], np.float32)

    ids = ["a", "b"]
    one = AnswerModel(Fixed({"q": [1.0, 0.0]}), np.eye(2, dtype=np.float32),
                      MatcherParams(encoder="e5", entry_ids=ids, scale=2.0, temperature=0.5))
    two = AnswerModel(Fixed({"q": [0.0, 1.0]}), np.eye(2, dtype=np.float32),
                      MatcherParams(encoder="e5", entry_ids=ids, scale=2.0, temperature=1.0))
    blend = BlendedMatcher([one, two], [0.75, 0.25], temperature=2.0, threshold=0.4)
    # member logits (2, 0) / 0.5 and (0, 2) / 1: log-softmax, weighted, then softmax at the blend's temperature
    p1, p2 = softmax(np.array([[4.0, 0.0]])), softmax(np.array([[0.0, 2.0]]))
    expected = softmax((0.75 * np.log(p1) + 0.25 * np.log(p2)) / 2.0)
    assert np.allclose(blend.probabilities(["q"]), expected)
    match = blend.match(["q"], k=2)[0]
    assert match.entry_ids == ["a", "b"] and match.handoff is False and blend.threshold == 0.4
    e5_folder = tmp_path / "blend"
    blend.members = [AnswerModel(None, m.prototypes, m.params) for m in blend.members]  # no encoder to save
    blend.save(e5_folder)
    loaded = load_matcher(e5_folder)
    assert isinstance(loaded, BlendedMatcher) and loaded.weights == [0.75, 0.25] and loaded.temperature == 2.0
    assert all(np.allclose(a.prototypes, b.prototypes) for a, b in zip(loaded.members, blend.members, strict=True))
    assert loaded.threshold == 0.4 and [m.params.temperature for m in loaded.members] == [0.5, 1.0]
    with pytest.raises(ValueError, match="matcher format 'blend'"):  # a reader of single matchers is told
        AnswerModel.load(e5_folder)
    other = AnswerModel(None, np.eye(3, 2, dtype=np.float32), MatcherParams(encoder="e5", entry_ids=["a", "b", "c"]))
    with pytest.raises(ValueError, match="same entries"):
        BlendedMatcher([one, other], [0.5, 0.5])
    with pytest.raises(ValueError, match="e5_weight"):
        AnswerTrainConfig(e5_weight=1.0)


def test_small_faqs_in_english_are_blended_with_e5_where_validation_says_it_helps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shoprank.answers.train as train_module
    from shoprank.answers.model import AnswerModel, BlendedMatcher
    from shoprank.answers.train import LabelledQuestions, train_matcher

    class AxisE5(AxisEncoder):  # stands in for the frozen E5: the same vectors, but it reads "z 0.50" as a "y"
        def encode_queries(self, texts: list[str]) -> np.ndarray:
            out = super().encode_queries(texts)
            out[[t == "z 0.50" for t in texts]] = [0.0, 1.0, 0.0]
            return out

    monkeypatch.setattr(train_module, "load_encoder", lambda kind, folder, max_length: AxisE5())
    wobbles = [f"{w:.2f}" for w in np.linspace(-0.2, 0.2, 6)]
    train = LabelledQuestions([f"x {w}" for w in wobbles] + [f"y {w}" for w in wobbles], [0] * 6 + [1] * 6)
    # MiniLM (the AxisEncoder) reads "z 0.50" as mostly z with some x: entry a, wrongly; E5 gets it right
    hard = LabelledQuestions(["x 0.05", "y -0.05", "z 0.50"], [0, 1, 1])
    config = AnswerTrainConfig(encoder="minilm", fine_tune=False, progress=False, refit=False)
    blend, report = train_matcher(["a", "b"], train, hard, config, encoder=AxisEncoder())
    assert isinstance(blend, BlendedMatcher) and [m.params.encoder for m in blend.members] == ["minilm", "e5"]
    assert blend.weights == [0.5, 0.5] and report.blend["kept"]
    assert report.blend["val"]["minilm"]["val_accuracy"] == pytest.approx(2 / 3) and report.val["val_accuracy"] == 1
    assert [m.entry_ids[0] for m in blend.match(["x 0.1", "y 0.1", "z 0.50"])] == ["a", "b", "b"]
    easy = LabelledQuestions(["x 0.05", "y -0.05"], [0, 1])  # both right alone: the blend is not worth its cost
    alone, report = train_matcher(["a", "b"], train, easy, config, encoder=AxisEncoder())
    assert isinstance(alone, AnswerModel) and report.blend["kept"] is False
    alone, report = train_matcher(["a", "b"], train, hard, dataclasses.replace(config, e5_max_per_entry=5),
                                  encoder=AxisEncoder())  # 6 questions an entry: above the limit, no E5 at all
    assert isinstance(alone, AnswerModel) and report.blend == {}
