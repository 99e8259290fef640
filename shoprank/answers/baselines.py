"""Baselines the matcher is measured against: TF-IDF + logistic regression, BM25 nearest example, and the
untuned encoder's nearest example. Each ``fit(texts, labels)`` then ``scores(texts)`` -> (n, classes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def analyzer_for(texts: Sequence[str]) -> Callable[[str], list[str]]:
    """The project's Chinese analyzer for CJK text, else the English one."""
    from shoprank.answers.train import mostly_cjk

    if mostly_cjk(list(texts)):
        from shoprank.text.chinese import ChineseAnalyzer

        return ChineseAnalyzer()
    from shoprank.text.english import EnglishAnalyzer

    return EnglishAnalyzer()


class TfidfLogistic:
    """Word 1-2-grams (character 1-3-grams for CJK) TF-IDF, multinomial logistic regression."""

    name = "TF-IDF + logistic regression"

    def __init__(self, c: float = 10.0, chars: bool = False) -> None:
        self.c = c
        self.chars = chars

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> TfidfLogistic:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(analyzer="char_wb" if self.chars else "word",
                                          ngram_range=(1, 3) if self.chars else (1, 2), sublinear_tf=True,
                                          min_df=1)
        x = self.vectorizer.fit_transform(texts)
        self.model = LogisticRegression(C=self.c, max_iter=2000).fit(x, labels)
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        probs = self.model.predict_proba(self.vectorizer.transform(texts))  # (n, seen classes)
        out = np.zeros((len(texts), int(self.model.classes_.max()) + 1))
        out[:, self.model.classes_] = probs
        return out


class BM25Index:
    """Okapi BM25 (k1 1.2, b 0.75, Lucene's idf) over short texts: ``score(queries)`` -> (n, docs)."""

    def __init__(self, docs: Sequence[str], analyzer: Callable[[str], list[str]] | None = None,
                 k1: float = 1.2, b: float = 0.75) -> None:
        import scipy.sparse as sp

        self.analyzer = analyzer or analyzer_for(docs)
        tokens = [self.analyzer(d) for d in docs]
        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, toks in enumerate(tokens):
            counts: dict[int, int] = {}
            for t in toks:
                j = self.vocab.setdefault(t, len(self.vocab))
                counts[j] = counts.get(j, 0) + 1
            for j, c in counts.items():
                rows.append(i)
                cols.append(j)
                vals.append(c)
        tf = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), max(1, len(self.vocab))), dtype=np.float64)
        lengths = np.asarray([len(t) for t in tokens], np.float64)
        avgdl = max(lengths.mean(), 1e-9) if len(docs) else 1.0
        df = np.bincount(cols, minlength=tf.shape[1]).astype(np.float64)
        self.idf = np.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        tf = tf.tocoo()
        norm = k1 * (1 - b + b * lengths[tf.row] / avgdl)
        weights = tf.data * (k1 + 1) / (tf.data + norm) * self.idf[tf.col]
        self.matrix = sp.csr_matrix((weights, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # (terms, docs)

    def query_vectors(self, queries: Sequence[str]) -> Any:
        import scipy.sparse as sp

        rows, cols = [], []
        for i, q in enumerate(queries):
            for t in set(self.analyzer(q)):
                j = self.vocab.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), self.matrix.shape[0]))

    def score(self, queries: Sequence[str]) -> np.ndarray:
        return np.asarray((self.query_vectors(queries) @ self.matrix).todense())  # (n, docs)


class BM25Nearest:
    """The entry of the training question with the highest BM25 score."""

    name = "BM25 nearest example"

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> BM25Nearest:
        self.index = BM25Index(texts)
        self.labels = np.asarray(labels)
        self.n = int(self.labels.max()) + 1
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.n))
        for start in range(0, len(texts), 512):
            s = self.index.score(texts[start : start + 512])  # (b, train)
            block = out[start : start + 512]
            for c in range(self.n):  # the best example of each entry
                mask = self.labels == c
                if mask.any():
                    block[:, c] = s[:, mask].max(axis=1)
        return out


class EncoderNearest:
    """The entry of the training question nearest by cosine under an untuned encoder."""

    name = "untuned encoder, nearest example"

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> EncoderNearest:
        self.vectors = self.encode(list(texts))
        self.labels = np.asarray(labels)
        self.n = int(self.labels.max()) + 1
        return self

    def scores_from(self, vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ self.vectors.T  # (n, train)
        out = np.full((len(vectors), self.n), -math.inf)
        for c in range(self.n):
            mask = self.labels == c
            if mask.any():
                out[:, c] = sims[:, mask].max(axis=1)
        return out

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores_from(self.encode(list(texts)))
