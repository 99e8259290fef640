"""Sentiment models on tiny data with known answers: training, selection, save -> load -> same output, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shoprank.cli.main import main
from shoprank.sentiment.examples import NEGATIVE_TEXTS, NEUTRAL_TEXTS, POSITIVE_TEXTS
from shoprank.sentiment.linear import TfidfConfig, TfidfLogistic
from shoprank.sentiment.model import SentimentModel
from shoprank.sentiment.train import SentimentConfig, detect_language, stratified_sample, train_sentiment

WORDS = {0: ["awful", "broken", "terrible", "refund"], 1: ["okay", "average", "fine", "so-so"],
         2: ["great", "love", "excellent", "perfect"]}


def corpus(n: int, seed: int) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.choice(3, p=[0.3, 0.2, 0.5]))
        filler = " ".join(rng.choice(["the", "item", "was", "it", "this", "dress"], 4))
        texts.append(f"{filler} {rng.choice(WORDS[y])} {filler}")
        labels.append(y)
    return texts, labels


def test_tfidf_candidate_learns_the_cue_words_and_ships() -> None:
    texts, labels = corpus(300, 0)
    vt, vy = corpus(90, 1)
    result = train_sentiment(texts, labels, vt, vy, SentimentConfig(methods=("tfidf",)), progress=False)
    assert result.model.name == "tfidf-lr"
    assert result.model.predict(["love it", "awful thing", "it was okay"]).labels == ["positive", "negative",
                                                                                    "neutral"]
    assert result.model.info["valid_macro_f1"] == 1.0


def test_validation_probabilities_are_the_shipped_candidates_own() -> None:
    texts, labels = corpus(300, 3)
    vt, vy = corpus(120, 4)
    config = SentimentConfig(methods=("tfidf",), valid_limit=50)
    result = train_sentiment(texts, labels, vt, vy, config, progress=False)
    picked = stratified_sample(vy, 50, config.seed)
    assert result.valid_labels.tolist() == [vy[i] for i in picked]
    cand = result.candidates[0]
    assert np.allclose(cand.valid_probs, cand.model.predict_proba([vt[i] for i in picked]))


def test_chinese_reviews_get_character_ngrams_and_known_labels() -> None:
    rng = np.random.default_rng(5)
    cues = {0: ["质量太差", "很失望", "要退货"], 2: ["非常喜欢", "质量很好", "物流很快"]}
    fill = ["这个", "衣服", "收到了", "东西", "酒店", "房间"]

    def reviews(n: int) -> tuple[list[str], list[int]]:
        ys = [int(y) for y in rng.choice([0, 2], n)]
        return [f"{rng.choice(fill)}{rng.choice(cues[y])}，{rng.choice(fill)}" for y in ys], ys

    texts, labels = reviews(200)
    vt, vy = reviews(60)
    result = train_sentiment(texts, labels, vt, vy, SentimentConfig(methods=("tfidf",)), progress=False)
    assert result.model.language == "zh"
    member = result.model.members[0]
    assert isinstance(member, TfidfLogistic) and member.config.analyzer == "char_wb"
    assert result.model.predict(["房间质量很好", "太差了，要退货"]).labels == ["positive", "negative"]
    assert result.model.info["valid_macro_f1"] == 1.0


def test_two_class_data_never_predicts_neutral() -> None:
    texts = ["great"] * 20 + ["awful"] * 20
    labels = [2] * 20 + [0] * 20
    result = train_sentiment(texts, labels, texts, labels, SentimentConfig(methods=("tfidf",)), progress=False)
    probs = result.model.predict_proba(["great", "awful", "hmm"])
    assert np.all(probs[:, 1] == 0)
    assert result.model.predict(["great", "awful"]).labels == ["positive", "negative"]


def test_save_load_gives_the_same_output(tmp_path: Path) -> None:
    texts, labels = corpus(200, 2)
    model = SentimentModel([TfidfLogistic.fit(texts, labels, TfidfConfig(min_df=1))], [1.0], [0.1, 0.3, 0.0], "en")
    model.save(tmp_path / "m")
    again = SentimentModel.load(tmp_path / "m")
    probe = ["love this", "broken again", "fine I guess", ""]
    assert np.allclose(model.predict_proba(probe), again.predict_proba(probe))
    assert model.predict(probe).labels == again.predict(probe).labels
    assert not any(p.suffix in {".pkl", ".pickle"} for p in (tmp_path / "m").rglob("*"))


def test_fine_tuned_classifier_trains_and_round_trips(tmp_path: Path) -> None:
    from shoprank.sentiment.classifier import FineTunedClassifier, fine_tune_classifier
    from shoprank.training.loop import TrainConfig

    texts = list(POSITIVE_TEXTS + NEGATIVE_TEXTS) * 4
    labels = [2 if t in POSITIVE_TEXTS else 0 for t in texts]
    clf = FineTunedClassifier.from_pretrained(max_length=32)
    history = fine_tune_classifier(clf, texts, labels, TrainConfig(epochs=3, batch_size=8, learning_rate=1e-4),
                                   validate=lambda c: float(np.mean(c.predict_proba(texts).argmax(1) == labels)),
                                   progress=False)
    assert max(h.get("val/macro_f1", 0) for h in history) == 1.0  # the cue words are learnt
    model = SentimentModel([clf], [1.0])
    model.save(tmp_path / "ft")
    again = SentimentModel.load(tmp_path / "ft")
    assert np.allclose(model.predict_proba(texts), again.predict_proba(texts), atol=1e-5)
    assert np.all(again.predict_proba(texts)[:, 1] == 0)  # neutral never seen in training


def test_the_head_reads_mean_pooled_tokens_and_bundles_keep_their_pooling(tmp_path: Path) -> None:
    import torch

    from shoprank.sentiment.classifier import FineTunedClassifier

    clf = FineTunedClassifier.from_pretrained(max_length=32)
    assert clf.pooling == "mean"
    features = clf._features(["love this dress", "broken zip"])
    with torch.no_grad():
        hidden = clf.model.bert(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).float()
        expected = clf.model.classifier((hidden * mask).sum(1) / mask.sum(1))  # dropout is off in eval mode
        assert torch.allclose(clf.logits(features), expected, atol=1e-6)
        assert not torch.allclose(clf.logits(features), clf.model(**features).logits, atol=1e-3)  # not [CLS]
    model = SentimentModel([clf], [1.0])
    model.save(tmp_path / "mean")
    meta = json.loads((tmp_path / "mean" / "sentiment.json").read_text())
    assert meta["members"][0]["params"]["pooling"] == "mean"
    probe = ["love this dress", "broken zip", ""]
    assert np.allclose(SentimentModel.load(tmp_path / "mean").predict_proba(probe), model.predict_proba(probe),
                       atol=1e-5)
    del meta["members"][0]["params"]["pooling"]  # a bundle written before pooling was recorded read [CLS]
    (tmp_path / "mean" / "sentiment.json").write_text(json.dumps(meta))
    assert SentimentModel.load(tmp_path / "mean").members[0].pooling == "cls"
    with pytest.raises(ValueError, match="pooling"):
        FineTunedClassifier.from_pretrained(max_length=32, pooling="max")
    with pytest.raises(ValueError, match="pooling"):
        SentimentConfig(pooling="max")


def test_balanced_class_weights_are_inverse_frequencies() -> None:
    from shoprank.sentiment.train import balanced_weights

    assert balanced_weights([0, 2, 2, 2], 3) == pytest.approx([2.0, 0.0, 2 / 3])  # mean 1 over present classes
    assert balanced_weights([0, 1, 2], 3) == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="class_weight"):
        SentimentConfig(class_weight="inverse")


def test_star_ratings_map_onto_the_three_classes() -> None:
    from shoprank.sentiment.labels import label_of_rating, star_of_rating, stars_to_labels

    assert [star_of_rating(r) for r in (1, 1.4, 2, 2.5, 3, 3.49, 4, 5, 6)] == [0, 0, 1, 2, 2, 2, 3, 4, 4]
    assert star_of_rating(None) is None and star_of_rating(float("nan")) is None
    for rating in (1, 2, 2.5, 3, 3.49, 3.5, 4, 5):  # a star's class is the rating's class
        star = star_of_rating(rating)
        assert stars_to_labels(np.eye(5)[[star]]).argmax() == label_of_rating(rating)
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert stars_to_labels(probs) == pytest.approx(np.array([[0.3, 0.3, 0.4]]))


def test_a_star_head_trains_on_ratings_reads_three_classes_and_round_trips(tmp_path: Path) -> None:
    from shoprank.sentiment.classifier import FineTunedClassifier

    words = {1: "awful", 2: "disappointing", 3: "okay", 4: "nice", 5: "wonderful"}
    rng = np.random.default_rng(0)
    ratings = [int(r) for r in rng.integers(1, 6, 60)]
    texts = [f"the dress was {words[r]}" for r in ratings]
    labels = [0 if r <= 2 else 1 if r == 3 else 2 for r in ratings]
    config = SentimentConfig(methods=("fine-tuned-stars",), max_length=16, epochs=6, learning_rate=2e-4,
                             batch_size=8)
    result = train_sentiment(texts, labels, texts, labels, config, progress=False, ratings=ratings)
    clf = result.model.members[0]
    assert isinstance(clf, FineTunedClassifier) and clf.outputs == 5 and clf.name == "minilm-fine-tuned-stars"
    probs = clf.predict_proba(texts)
    assert probs.shape == (60, 3) and probs.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert float(np.mean(probs.argmax(1) == np.asarray(labels))) == 1.0  # the five cue words, three classes
    result.model.save(tmp_path / "stars")
    again = SentimentModel.load(tmp_path / "stars")
    assert np.allclose(again.predict_proba(texts), result.model.predict_proba(texts), atol=1e-5)
    once = SentimentConfig(methods=("fine-tuned-stars",), max_length=16, epochs=1, batch_size=8)
    plain = train_sentiment(texts[:16], labels[:16], texts, labels, once, progress=False)  # no ratings: 3-way
    assert plain.model.members[0].outputs == 3
    with pytest.raises(ValueError, match="one rating"):
        train_sentiment(texts, labels, texts, labels, config, ratings=ratings[:-1])


def test_helpers() -> None:
    assert detect_language(["质量很好，物流很快"] * 3) == "zh" and detect_language(["fine"]) == "en"
    picked = stratified_sample([0] * 90 + [1] * 10, 20, 0)
    assert len(picked) == 20 and sum(i >= 90 for i in picked) == 2
    with pytest.raises(ValueError, match="methods"):
        SentimentConfig(methods=("magic",))
    with pytest.raises(ValueError, match="two classes"):
        train_sentiment(["a", "b"], [2, 2], ["a"], [2])


def test_cli_ingest_train_run_and_alerts(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoprank.sentiment.examples import review_history

    rows, _ = review_history(["p1", "p2"], burst_product="p1")
    products = tmp_path / "products.jsonl"
    products.write_text('{"id": "p1", "title": "Drill", "category": "Tools"}\n')  # p2 is unknown: flagged
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["ingest", "products", str(products), "--shop", "s", "--quiet"]) == 0
    assert main(["ingest", "reviews", str(reviews), "--shop", "s", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "flagged 78 reviews" in out and "new alert" in out
    assert main(["train", "sentiment", "--shop", "s", "--methods", "tfidf", "--quiet"]) == 0
    assert "published bundle sentiment/" in capsys.readouterr().out
    texts = tmp_path / "texts.csv"
    with texts.open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "text"], ["a", POSITIVE_TEXTS[0]], ["b", NEGATIVE_TEXTS[0]],
                                      ["c", NEUTRAL_TEXTS[0]]])
    out_file = tmp_path / "labels.csv"
    assert main(["run", "sentiment", "--shop", "s", "--texts", str(texts), "--out", str(out_file)]) == 0
    got = list(csv.DictReader(out_file.open()))
    assert [(r["id"], r["label"]) for r in got] == [("a", "positive"), ("b", "negative"), ("c", "neutral")]
    assert all(-1 <= float(r["score"]) <= 1 for r in got) and float(got[0]["score"]) > 0 > float(got[1]["score"])
    capsys.readouterr()
    assert main(["alerts", "--shop", "s", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert "product:p1" in {a["scope"] for a in alerts}
    assert all({"scope", "at", "negative_share", "baseline_share"} <= set(a) for a in alerts)
    assert "product:p2" not in {a["scope"] for a in alerts}


def test_train_sentiment_defaults_are_the_configs() -> None:
    from shoprank.cli.main import build_parser

    args = build_parser().parse_args(["train", "sentiment", "--shop", "s"])
    config = SentimentConfig()
    assert (args.train_limit, args.head_limit, args.epochs, args.learning_rate, args.max_length) == (
        config.train_limit, config.head_limit, config.epochs, config.learning_rate, config.max_length)
    assert (args.pooling, args.class_weight) == (config.pooling, config.class_weight) == ("mean", "balanced")
    assert tuple(args.methods.split(",")) == config.methods
