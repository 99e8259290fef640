"""A shop's sentiment: training from its reviews, scoring stored reviews, trends and alerts.

Which label monitoring uses: the published sentiment model's verdict on the review's title and text; before a
model is published, the star rating (1-2 negative, 3 neutral, 4-5 positive); reviews with neither are left
out of trends and alerts.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.sentiment.labels import LABELS, label_index, label_of_rating
from shoprank.sentiment.model import SentimentModel
from shoprank.sentiment.monitor import AlertConfig, Observation, detect, trend
from shoprank.sentiment.topics import TopicTagger
from shoprank.sentiment.train import SentimentConfig, TrainResult, train_sentiment
from shoprank.store.base import ReviewSentiment, Store

log = logging.getLogger("shoprank.sentiment")
KIND = "sentiment"
WEBHOOK_SETTING = "sentiment.webhook"
ALERT_SETTING = "sentiment.alerts"
TOPIC_SETTING = "sentiment.topics"
_MODELS: dict[tuple[str, str], SentimentModel] = {}  # (models folder, version) -> loaded model


@dataclass
class Published:
    version: str
    result: TrainResult
    train_reviews: int
    valid_reviews: int


def load_published(models_root: Path) -> tuple[SentimentModel, str] | None:
    """The shop's latest sentiment model (cached per version), or None when none is published."""
    from shoprank.bundles import latest_version, open_bundle

    if latest_version(models_root, KIND) is None:
        return None
    bundle = open_bundle(models_root, KIND)
    key = (str(models_root), bundle.version)
    if key not in _MODELS:
        _MODELS[key] = SentimentModel.load(bundle.path / "model")
    return _MODELS[key], bundle.version


def read_labels(path: Path) -> dict[str, int]:
    """A labels file: CSV ``review_id,label`` (label: negative / neutral / positive)."""
    labels: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"review_id", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns review_id,label (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            try:
                labels[row["review_id"].strip()] = label_index(row["label"])
            except ValueError as exc:
                raise ValueError(f"{path} line {line}: field 'label': {exc}") from None
    return labels


def training_reviews(store: Store, labels: dict[str, int] | None = None
                     ) -> tuple[list[str], list[int], list[float | None]]:
    """(texts, labels, ratings) in time order: labels from the labels file when given, else from the ratings."""
    texts, ys, ratings = [], [], []
    for review in store.iter_reviews():
        y = labels.get(review.review_id) if labels is not None else label_of_rating(review.rating)
        if y is not None:
            texts.append(review.full_text())
            ys.append(int(y))
            ratings.append(review.rating)
    return texts, ys, ratings


def train_shop(store: Store, models_root: Path, config: SentimentConfig, *, labels: dict[str, int] | None = None,
               progress: bool = True, base_model: str | None = None) -> Published:
    """Train on the shop's labelled reviews (the latest tenth by time validates) and publish the bundle."""
    from shoprank.bundles import publish

    texts, ys, ratings = training_reviews(store, labels)
    if len(texts) < 20:
        source = "labels file" if labels is not None else "rating"
        raise ValueError(f"only {len(texts)} reviews with a {source}; training needs at least 20")
    cut = int(len(texts) * 0.9)
    if len(set(ys[:cut])) < 2:
        raise ValueError("the training reviews hold one class only; sentiment needs at least two")
    result = train_sentiment(texts[:cut], ys[:cut], texts[cut:], ys[cut:], config, progress=progress,
                             base_model=base_model, ratings=ratings[:cut] if labels is None else None)
    params = {"model": result.model.name, "language": result.model.language, "train_reviews": cut,
              "valid_reviews": len(texts) - cut, "valid_macro_f1": result.model.info["valid_macro_f1"],
              "candidates": [{"model": r["model"], "valid_macro_f1": r["valid_macro_f1"]} for r in result.validation]}
    with publish(models_root, KIND, params) as folder:
        result.model.save(folder / "model")
    from shoprank.bundles import latest_version

    version = latest_version(models_root, KIND) or ""
    return Published(version, result, cut, len(texts) - cut)


def score_pending(store: Store, model: SentimentModel, version: str, tagger: TopicTagger | None,
                  batch: int = 256, progress: bool = False) -> int:
    """Score the stored reviews that the model ``version`` has not scored yet; returns how many."""
    done = store.review_sentiment(version)
    pending = [r for r in store.iter_reviews() if r.review_id not in done]
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        texts = [r.full_text() for r in chunk]
        prediction = model.predict(texts, progress=progress)
        topics = tagger.tag(texts) if tagger is not None else [()] * len(chunk)
        store.put_review_sentiment([
            ReviewSentiment(r.review_id, version, LABELS.index(label), float(score), tuple(t))
            for r, label, score, t in zip(chunk, prediction.labels, prediction.scores, topics, strict=True)])
    return len(pending)


def predict_texts(model: SentimentModel, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    prediction = model.predict(list(texts))
    return prediction.labels, prediction.scores


class ShopSentiment:
    """One shop's reviews as monitoring sees them."""

    def __init__(self, store: Store, models_root: Path, *, tag_topics: bool = True) -> None:
        self.store = store
        self.models_root = models_root
        self.tag_topics = tag_topics

    def tagger(self) -> TopicTagger | None:
        return TopicTagger.from_settings(self.store.get_setting(TOPIC_SETTING)) if self.tag_topics else None

    def alert_config(self) -> AlertConfig:
        return AlertConfig.from_settings(self.store.get_setting(ALERT_SETTING))

    def observations(self) -> tuple[list[Observation], str]:
        """Every labelled review, and where its label came from ("model VERSION" or "rating")."""
        published = load_published(self.models_root)
        reviews = list(self.store.iter_reviews())
        categories = self._categories({r.product_id for r in reviews})
        if published is not None:
            model, version = published
            score_pending(self.store, model, version, self.tagger())
            verdicts = self.store.review_sentiment(version)
            return [Observation(r.timestamp, r.product_id, categories.get(r.product_id, ""), v.label, v.topics,
                                v.score)
                    for r in reviews if (v := verdicts.get(r.review_id)) is not None], f"model {version}"
        rated = [(r, y) for r in reviews if (y := label_of_rating(r.rating)) is not None]
        tagger = self.tagger()
        if tagger is not None:
            tagger.use_embeddings = False  # without a model: keyword cues only, no encoder on every read
            topics = tagger.tag([r.full_text() for r, _ in rated])
        else:
            topics = [()] * len(rated)
        return [Observation(r.timestamp, r.product_id, categories.get(r.product_id, ""), y, t, float(y - 1))
                for (r, y), t in zip(rated, topics, strict=True)], "rating"

    def _categories(self, ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(ids)
        return {pid: p.top_category for pid, p in zip(ids, self.store.get_products(ids), strict=True) if p}

    def trend(self, interval: str = "week", **filters: Any) -> dict[str, Any]:
        observations, source = self.observations()
        return {"interval": interval, "label_source": source, **{k: v for k, v in filters.items() if v is not None},
                "points": trend(observations, interval, **filters)}

    def refresh_alerts(self) -> list[dict[str, Any]]:
        """Detect over the whole history and store; returns the alerts not seen before."""
        observations, source = self.observations()
        alerts = [{**a, "label_source": source} for a in detect(observations, self.alert_config())]
        return self.store.add_alerts(alerts)


def after_ingest(store: Store, models_root: Path, flagged: int) -> list[dict[str, Any]]:
    """After ``shoprank ingest reviews`` stored its batch: say which were flagged, check alerts, deliver."""
    from shoprank.sentiment.webhook import deliver_new

    if flagged:
        print(f"  flagged {flagged:,} reviews of products the shop does not hold (stored; see "
              "'unknown products' in docs/sentiment.md)")
    new = ShopSentiment(store, models_root).refresh_alerts()
    if new:
        print(f"  {len(new)} new alert(s); 'shoprank alerts --shop ...' lists them")
        deliver_new(store, new)
    return new
