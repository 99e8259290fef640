"""The vector index: product vectors in FAISS, exact for small catalogues and HNSW for large ones
(:data:`HNSW_THRESHOLD`).

Rows line up with the lexical index (row ``i`` is the same product in both); rows are appended
by ``add`` and hidden by the caller's ``alive`` mask, since HNSW cannot delete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

HNSW_THRESHOLD = 50_000
"""Catalogues larger than this get an HNSW graph instead of an exact scan. Chosen on Home Depot's validation
queries (54,667 products): the graph serves the same NDCG@10 and Recall@100 as the exact scan and answers the
dense top 200 in a median 1.4 ms instead of 11.8 ms (``python -m bench.dense_choice``, docs/benchmarks.md
"Serving latency"); smaller catalogues were not measured and keep the exact scan."""
HNSW_M = 32  # graph links per node
EF_SEARCH = 512
"""Candidate list of a search: at 512, 98% of the exact dense top 200 of Home Depot's validation queries (87% at
128), chosen where every setting tried served the same validation NDCG@10 and Recall@100."""
EF_CONSTRUCTION = 80  # candidate list while inserting a product


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ImportError("dense retrieval needs FAISS: pip install faiss-cpu") from None
    return faiss


class DenseIndex:
    FORMAT = 1

    def __init__(self, dim: int, kind: str = "auto", hnsw_m: int = HNSW_M, ef_search: int = EF_SEARCH,
                 ef_construction: int = EF_CONSTRUCTION, hnsw_above: int | None = None) -> None:
        """``kind``: ``flat`` (exact), ``hnsw`` or ``auto`` (HNSW for more than ``hnsw_above`` products,
        default :data:`HNSW_THRESHOLD`; decided when the index is first made and recorded when saved)."""
        if kind not in ("auto", "flat", "hnsw"):
            raise ValueError(f"index kind must be auto, flat or hnsw, got {kind!r}")
        if dim < 1:
            raise ValueError(f"dim is the vectors' width: at least 1, got {dim}")
        if hnsw_m < 2 or ef_search < 1 or ef_construction < 1:
            raise ValueError(f"HNSW needs hnsw_m >= 2 (links per node), ef_search >= 1 and ef_construction >= 1 "
                             f"(candidate lists), got {hnsw_m}, {ef_search}, {ef_construction}")
        self.dim = dim
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.hnsw_above = hnsw_above
        self.vectors = np.zeros((0, dim), np.float32)
        self._index: Any = None

    def _resolved_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if n > (HNSW_THRESHOLD if self.hnsw_above is None else self.hnsw_above) else "flat"

    def _make_index(self) -> Any:
        faiss = _faiss()
        self.kind = self._resolved_kind(len(self.vectors))  # what is made is what is saved
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            index = faiss.IndexFlatIP(self.dim)
        if len(self.vectors):
            index.add(self.vectors)
        return index

    def build(self, vectors: np.ndarray) -> DenseIndex:
        """Hold ``vectors``; the FAISS index (an HNSW graph takes a while) is made on first use: a search, an
        ``add`` or ``save``, so a placeholder that is replaced before it is searched costs nothing."""
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self.kind = self._resolved_kind(len(self.vectors))
        self._index = None
        return self

    def set_ef_search(self, ef_search: int) -> None:
        """The candidate list of later HNSW searches (saved with the index)."""
        if ef_search < 1:
            raise ValueError(f"ef_search is a candidate list length: at least 1, got {ef_search}")
        self.ef_search = ef_search
        if self.kind == "hnsw" and self._index is not None:
            self._index.hnsw.efSearch = ef_search

    def _ready(self) -> Any:
        if self._index is None:
            self._index = self._make_index()
        return self._index

    def add(self, vectors: np.ndarray) -> None:
        new = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._index is not None:
            self._index.add(new)
        self.vectors = np.concatenate([self.vectors, new])
        self._ready()

    def search(self, queries: np.ndarray, k: int, alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosines of the ``k`` nearest live rows, shapes (q, k); missing slots are row -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        n = len(self.vectors)
        if n == 0 or k <= 0:
            return np.full((len(q), max(k, 0)), -1), np.zeros((len(q), max(k, 0)), np.float32)
        dead = 0 if alive is None else int(n - alive[:n].sum())
        want = min(n, k + dead)
        scores, rows = self._ready().search(q, want)
        if alive is None or dead == 0:
            return rows[:, :k], scores[:, :k]
        out_rows = np.full((len(q), k), -1)
        out_scores = np.zeros((len(q), k), np.float32)
        for i in range(len(q)):
            keep = (rows[i] >= 0) & alive[np.maximum(rows[i], 0)]
            r, s = rows[i][keep][:k], scores[i][keep][:k]
            out_rows[i, : len(r)] = r
            out_scores[i, : len(s)] = s
        return out_rows, out_scores

    def cosine(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of one query vector with the given rows, shape (len(rows),)."""
        return self.vectors[rows] @ np.asarray(query, np.float32).reshape(self.dim)

    def save(self, folder: Path, name: str = "dense") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._ready()
        np.save(folder / f"{name}_vectors.npy", self.vectors)
        meta = {"format": self.FORMAT, "dim": self.dim, "kind": self.kind,
                "hnsw_m": self.hnsw_m, "ef_search": self.ef_search, "ef_construction": self.ef_construction}
        if meta["kind"] == "hnsw":
            _faiss().write_index(self._index, str(folder / f"{name}.faiss"))
        (folder / f"{name}.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path, name: str = "dense") -> DenseIndex:
        meta = json.loads((folder / f"{name}.json").read_text())
        if meta.get("format") != cls.FORMAT:
            raise ValueError(f"{folder}/{name}.json has format {meta.get('format')!r}, expected {cls.FORMAT}")
        index = cls(meta["dim"], meta["kind"], meta["hnsw_m"], meta["ef_search"],
                    meta.get("ef_construction", 80))  # indices saved before it was recorded were built with 80
        index.vectors = np.load(folder / f"{name}_vectors.npy")
        if meta["kind"] == "hnsw":
            index._index = _faiss().read_index(str(folder / f"{name}.faiss"))
            index._index.hnsw.efSearch = index.ef_search
        else:
            index._index = index._make_index()
        return index
