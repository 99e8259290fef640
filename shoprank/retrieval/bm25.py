"""Field-weighted BM25 over title, description, category, brand and attributes.

Each field has its own sparse (rows x terms) matrix of precomputed BM25 term weights (the
bm25s approach: scoring a query is a sum of matrix columns). The weighted sum of the field
matrices is kept too, so a query over the whole catalogue costs one column sum. Products are
added incrementally (new rows use the idf and average lengths frozen at build time; terms the
index has not seen get an idf from their count in the new rows) and removed by tombstone.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprank.data.records import Product
from shoprank.text import Analyzer, make_analyzer

FIELDS = ("title", "description", "category", "brand", "attributes")


def field_text(product: Product, name: str) -> str:
    if name == "attributes":
        return " ".join(f"{k} {v}" for k, v in product.attributes.items() if isinstance(v, str | int | float))
    return str(getattr(product, name) or "")


@dataclass
class BM25Config:
    k1: float = 1.2
    b: float = 0.75
    weights: dict[str, float] = field(
        default_factory=lambda: {"title": 3.0, "description": 1.0, "category": 1.5, "brand": 2.0, "attributes": 1.0}
    )

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown BM25 fields {sorted(unknown)}; valid fields: {', '.join(FIELDS)}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError("BM25 needs k1 >= 0 and 0 <= b <= 1")


def lucene_idf(df: np.ndarray, n: int) -> np.ndarray:
    return np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)


class BM25Index:
    """``score(tokens)`` -> one score per row; rows are appended by ``add`` and hidden by ``alive``."""

    FORMAT = 1

    def __init__(self, analyzer: Analyzer, config: BM25Config | None = None) -> None:
        self.analyzer = analyzer
        self.config = config or BM25Config()
        self.fields = [f for f in FIELDS if self.config.weights.get(f, 0) > 0]
        self.vocab: dict[str, int] = {}
        self.n_docs = 0
        self.df: dict[str, np.ndarray] = {f: np.zeros(0, np.float32) for f in self.fields}
        self.avgdl: dict[str, float] = {f: 1.0 for f in self.fields}
        self.matrices: dict[str, sp.csc_matrix] = {}
        self.combined: sp.csc_matrix = sp.csc_matrix((0, 0), dtype=np.float32)

    # building -----------------------------------------------------------------------------------
    def _term_ids(self, tokens: list[str], grow: bool) -> list[int]:
        ids = []
        for token in tokens:
            tid = self.vocab.get(token)
            if tid is None and grow:
                tid = self.vocab[token] = len(self.vocab)
            if tid is not None:
                ids.append(tid)
        return ids

    def _analyze(self, products: Sequence[Product]) -> dict[str, list[list[int]]]:
        """Term ids per field and product; each distinct text is analysed once (empty fields, repeated brands
        and categories cost a dict look-up)."""
        seen: dict[str, list[str]] = {"": []}
        out = {}
        for f in self.fields:
            docs = []
            for p in products:
                text = field_text(p, f)
                tokens = seen.get(text)
                if tokens is None:
                    tokens = seen[text] = self.analyzer(text)
                docs.append(self._term_ids(tokens, True))
            out[f] = docs
        return out

    def _tf(self, docs: list[list[int]]) -> sp.csr_matrix:
        """(len(docs), vocab) term counts, built in one go (a doc's repeated terms summed)."""
        lengths = np.fromiter((len(d) for d in docs), np.int64, len(docs))
        rows = np.repeat(np.arange(len(docs)), lengths)
        cols = np.fromiter(itertools.chain.from_iterable(docs), np.int64, int(lengths.sum()))
        tf = sp.csr_matrix((np.ones(len(cols), np.float64), (rows, cols)), shape=(len(docs), len(self.vocab)))
        tf.sum_duplicates()
        return tf

    def _weights(self, docs: list[list[int]], idf: np.ndarray, avgdl: float) -> sp.csc_matrix:
        k1, b = self.config.k1, self.config.b
        tf = self._tf(docs)
        lengths = np.fromiter((len(d) for d in docs), np.float64, len(docs))
        norm = k1 * (1 - b + b * lengths / avgdl)  # per row
        row_of = np.repeat(np.arange(len(docs)), np.diff(tf.indptr))
        vals = idf[tf.indices] * tf.data / (tf.data + norm[row_of])  # Lucene: no (k1 + 1) factor
        weights = sp.csr_matrix((vals.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        return sp.csc_matrix(weights, dtype=np.float32)

    def _df(self, docs: list[list[int]]) -> np.ndarray:
        tf = self._tf(docs)
        return np.bincount(tf.indices, minlength=len(self.vocab)).astype(np.float32)

    def _recombine(self) -> None:
        total = None
        for f in self.fields:
            part = self.matrices[f] * np.float32(self.config.weights[f])
            total = part if total is None else total + part
        self.combined = sp.csc_matrix(total, dtype=np.float32)

    def build(self, products: Sequence[Product]) -> BM25Index:
        docs = self._analyze(products)
        self.n_docs = len(products)
        for f in self.fields:
            self.df[f] = self._df(docs[f])
            lengths = [len(d) for d in docs[f]]
            self.avgdl[f] = max(1.0, float(np.mean(lengths))) if lengths else 1.0
            self.matrices[f] = self._weights(docs[f], lucene_idf(self.df[f], max(1, self.n_docs)), self.avgdl[f])
        self._recombine()
        return self

    def add(self, products: Sequence[Product]) -> None:
        """Append rows for ``products`` (the caller hides any older row of the same id)."""
        if not products:
            return
        docs = self._analyze(products)
        n_terms = len(self.vocab)
        for f in self.fields:
            df = np.zeros(n_terms, np.float32)
            df[: len(self.df[f])] = self.df[f]
            new_df = self._df(docs[f])
            unseen = df == 0
            df[unseen] = new_df[unseen]
            self.df[f] = df
            weights = self._weights(docs[f], lucene_idf(df, max(1, self.n_docs)), self.avgdl[f])
            old = self.matrices[f]
            old.resize((old.shape[0], n_terms))
            self.matrices[f] = sp.vstack([old, weights], format="csc", dtype=np.float32)
        self.n_docs += len(products)
        self._recombine()

    def prefix_terms(self, prefix: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` vocabulary terms longer than ``prefix`` that start with it, those in the most products
        first (what a query's unfinished last word can mean)."""
        import bisect

        if getattr(self, "_sorted_for", -1) != len(self.vocab):
            self._sorted_terms = sorted(self.vocab)
            self._sorted_for = len(self.vocab)
        terms = self._sorted_terms
        found = []
        for i in range(bisect.bisect_left(terms, prefix), len(terms)):
            if not terms[i].startswith(prefix):
                break
            if terms[i] != prefix:
                found.append(terms[i])
        if len(found) > limit:
            df = sum(self.df[f] for f in self.fields) if self.fields else None
            if df is not None:
                found.sort(key=lambda t: (-float(df[self.vocab[t]]) if self.vocab[t] < len(df) else 0.0, t))
        return found[:limit]

    # scoring ------------------------------------------------------------------------------------
    def query_terms(self, tokens: list[str]) -> np.ndarray:
        return np.unique(np.asarray(self._term_ids(tokens, False), dtype=np.int64))

    def term_weights(self, tokens: list[str], weights: Sequence[float] | None, terms: np.ndarray
                     ) -> np.ndarray | None:
        """The weight of each of ``terms`` (unique term ids, as :meth:`query_terms` gives them) from the per-token
        ``weights``: a term given twice keeps its highest. None when every weight is 1 (the unweighted sum)."""
        if weights is None:
            return None
        if len(weights) != len(tokens):
            raise ValueError(f"weights: {len(weights)} given for {len(tokens)} tokens; give one per token")
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError("weights must be finite and not negative")
        best: dict[int, float] = {}
        for token, weight in zip(tokens, weights, strict=True):
            tid = self.vocab.get(token)
            if tid is not None:
                best[tid] = max(best.get(tid, 0.0), float(weight))
        out = np.asarray([best[int(t)] for t in terms], np.float32)
        return None if bool(np.all(out == 1.0)) else out

    def score(self, tokens: list[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """Weighted BM25 of every row, shape (rows,). ``weights`` (one per token, default all 1): each term's
        BM25 counts times its weight (a synonym added to the query counts less than a typed word)."""
        terms = self.query_terms(tokens)
        if len(terms) == 0:
            return np.zeros(self.combined.shape[0], np.float32)
        column_weights = self.term_weights(tokens, weights, terms)
        if column_weights is None:
            return np.asarray(self.combined[:, terms].sum(axis=1)).ravel().astype(np.float32)
        return np.asarray(self.combined[:, terms] @ column_weights).ravel().astype(np.float32)

    def expand(self, tokens: list[str], added: Sequence[tuple[str, float]]) -> tuple[list[str], list[float] | None]:
        """``tokens`` (the typed query's, weight 1) with the analysed tokens of each ``(phrase, weight)`` in
        ``added`` that the query lacks, and one weight per token: None when nothing was added or every weight
        is 1 (so scoring is exactly the unweighted sum)."""
        out, weights = list(tokens), [1.0] * len(tokens)
        seen = set(out)
        for phrase, weight in added:
            for token in self.analyzer(phrase):
                if token not in seen:
                    seen.add(token)
                    out.append(token)
                    weights.append(float(weight))
        return out, (None if all(w == 1.0 for w in weights) else weights)

    def term_blocks(self, tokens: list[str], rows: np.ndarray
                    ) -> tuple[np.ndarray, list[str], dict[str, np.ndarray], np.ndarray]:
        """The query's unique term ids and their tokens, each field's BM25 weights of those terms in ``rows``
        and the weighted sum's: dense arrays of shape (len(rows), len(terms)), columns in term-id order."""
        names = {self.vocab[t]: t for t in tokens if t in self.vocab}
        terms = np.unique(np.asarray(list(names), dtype=np.int64))
        rows = np.asarray(rows, dtype=np.int64)
        positions = _positions(rows, self.combined.shape[0]) if len(terms) else None
        blocks = {f: _column_block(self.matrices[f], terms, rows, positions) for f in self.fields}
        return terms, [names[int(t)] for t in terms], blocks, _column_block(self.combined, terms, rows, positions)

    def field_scores(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """Per-field BM25 of the given rows, shape (len(rows), len(FIELDS)); absent fields are 0."""
        out = np.zeros((len(rows), len(FIELDS)), np.float32)
        _, _, blocks, _ = self.term_blocks(tokens, rows)
        for f, block in blocks.items():
            out[:, FIELDS.index(f)] = block.sum(axis=1)
        return out

    def matched_terms(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """Boolean (len(rows), len(unique query terms)): which query terms each row contains."""
        return self.term_blocks(tokens, rows)[3] != 0

    # persistence --------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        meta: dict[str, Any] = {
            "format": self.FORMAT, "analyzer": self.analyzer.config(), "config": asdict(self.config),
            "n_docs": self.n_docs, "avgdl": self.avgdl, "fields": self.fields,
        }
        (folder / "bm25.json").write_text(json.dumps(meta))
        (folder / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False))
        for f in self.fields:
            sp.save_npz(folder / f"bm25_{f}.npz", self.matrices[f], compressed=False)  # zlib: seconds per 50k rows
            np.save(folder / f"df_{f}.npy", self.df[f])

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        meta = json.loads((folder / "bm25.json").read_text())
        if meta.get("format") != cls.FORMAT:
            raise ValueError(f"{folder}/bm25.json has format {meta.get('format')!r}, expected {cls.FORMAT}")
        index = cls(make_analyzer(meta["analyzer"]), BM25Config(**meta["config"]))
        index.vocab = {t: i for i, t in enumerate(json.loads((folder / "vocab.json").read_text()))}
        index.n_docs = meta["n_docs"]
        index.avgdl = meta["avgdl"]
        for f in index.fields:
            index.matrices[f] = sp.load_npz(folder / f"bm25_{f}.npz").tocsc().astype(np.float32)
            index.df[f] = np.load(folder / f"df_{f}.npy")
        index._recombine()
        return index


def _positions(rows: np.ndarray, n_rows: int) -> np.ndarray | None:
    """Row -> its position in ``rows`` (-1 elsewhere); None when ``rows`` repeats a row."""
    positions = np.full(n_rows, -1, np.int64)
    positions[rows] = np.arange(len(rows))
    return positions if int((positions >= 0).sum()) == len(rows) else None


def _column_block(matrix: sp.csc_matrix, terms: np.ndarray, rows: np.ndarray, positions: np.ndarray | None
                  ) -> np.ndarray:
    """``matrix[rows][:, terms]`` as a dense float32 array, read straight from the CSC columns."""
    out = np.zeros((len(rows), len(terms)), np.float32)
    if len(terms) == 0 or len(rows) == 0:
        return out
    if positions is None:  # repeated rows: the general (slower) path
        return matrix[:, terms].tocsr()[rows].toarray().astype(np.float32)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for j, term in enumerate(terms.tolist()):
        start, end = indptr[term], indptr[term + 1]
        where = positions[indices[start:end]]
        hit = where >= 0
        out[where[hit], j] = data[start:end][hit]
    return out


def idf_check(n: int, df: int) -> float:
    """Lucene's idf for one term (for tests and docs)."""
    return math.log1p((n - df + 0.5) / (df + 0.5))
