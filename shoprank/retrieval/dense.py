"""The vector index: product vectors, scanned exactly for small catalogues and searched through an HNSW graph
(FAISS) for large ones (:data:`HNSW_THRESHOLD`).

Rows line up with the lexical index (row ``i`` is the same product in both); rows are appended
by ``add`` and hidden by the caller's ``alive`` mask, since HNSW cannot delete.

Every vector is held once. The exact kind keeps a numpy array and scans it with FAISS's exhaustive search
(``faiss.knn``: the code ``IndexFlatIP.search`` runs, without an index holding a second copy). The HNSW kind's
``vectors`` is a read-only numpy view of the graph's own storage, taken again whenever that storage may have
moved (the graph made, rows added, loaded).
"""

from __future__ import annotations

import json
import sys
import threading
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


class _Storage:
    """The float32 vectors an HNSW index stores, as numpy sees them (``__array_interface__``): an array made from
    it has this object as its base, which keeps the index, and so the memory, alive as long as the array is."""

    def __init__(self, index: Any, dim: int) -> None:
        storage = _faiss().downcast_index(index.storage)
        self.index = index
        self.__array_interface__ = {"version": 3, "typestr": "<f4", "shape": (int(storage.ntotal), dim),
                                    "data": (int(storage.get_xb()), True)}  # read-only: the graph is built on it


def _storage_view(index: Any, dim: int) -> np.ndarray:
    """A read-only (n, dim) view of ``index``'s stored vectors; no copy."""
    if index.ntotal == 0:
        return np.zeros((0, dim), np.float32)
    return np.asarray(_Storage(index, dim))


class DenseIndex:
    FORMAT = 1

    def __init__(self, dim: int, kind: str = "auto", hnsw_m: int = HNSW_M, ef_search: int = EF_SEARCH,
                 ef_construction: int = EF_CONSTRUCTION, hnsw_above: int | None = None) -> None:
        """``kind``: ``flat`` (exact), ``hnsw`` or ``auto`` (HNSW for more than ``hnsw_above`` products,
        default :data:`HNSW_THRESHOLD`; decided when the index is first used and recorded when saved)."""
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
        self._vectors = np.zeros((0, dim), np.float32)
        self._index: Any = None  # the HNSW graph, which holds the vectors; None for the exact kind
        self._making = threading.Lock()  # two searches of a fresh index make its graph once

    @property
    def vectors(self) -> np.ndarray:
        """(n, dim) float32, row ``i`` product row ``i``: the only copy of the vectors in memory (for HNSW a
        read-only view of the graph's storage). Hold it only as long as the engine's read lock: ``add`` keeps an
        array taken earlier valid (the rows it had), at the cost of copying the graph."""
        return self._vectors

    @vectors.setter
    def vectors(self, vectors: np.ndarray) -> None:
        self.build(vectors)  # new vectors: a graph over the old ones would answer for them

    def _resolved_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if n > (HNSW_THRESHOLD if self.hnsw_above is None else self.hnsw_above) else "flat"

    def _make_index(self) -> Any:
        """The HNSW graph over the vectors (a copy of them, which then replaces the numpy array)."""
        faiss = _faiss()
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        if len(self._vectors):
            index.add(self._vectors)
        return index

    def build(self, vectors: np.ndarray) -> DenseIndex:
        """Hold ``vectors``; an HNSW graph (it takes a while) is made on first use: a search, an ``add`` or
        ``save``, so a placeholder that is replaced before it is searched costs nothing."""
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self.kind = self._resolved_kind(len(self._vectors))
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
        """The HNSW graph, made now if it was not (None for the exact kind); fixes an ``auto`` kind."""
        if self._index is None and self.kind != "flat":
            with self._making:
                if self._index is None:
                    self.kind = self._resolved_kind(len(self._vectors))  # what is made is what is saved
                    if self.kind == "hnsw":
                        index = self._make_index()
                        self._index, self._vectors = index, _storage_view(index, self.dim)
        return self._index

    def _view_held_elsewhere(self) -> bool:
        """Whether anything but this index holds its view of the graph's storage (a caller's variable, a slice
        of it): adding in place may move that storage and leave such an array on freed memory."""
        view = self._vectors
        # references: ``self._vectors``, ``view`` and getrefcount's argument; the holder: the view's base, the
        # argument (a slice's base is the view, counted above)
        return sys.getrefcount(view) > 3 or sys.getrefcount(view.base) > 2

    def add(self, vectors: np.ndarray) -> None:
        new = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._index is None:
            self._vectors = np.concatenate([self._vectors, new])
            self._ready()
            return
        index = self._index
        if self._view_held_elsewhere():
            index = _faiss().clone_index(index)  # copy on write: the array held elsewhere keeps the old storage
            index.hnsw.efSearch = self.ef_search
        index.add(new)
        self._index, self._vectors = index, _storage_view(index, self.dim)

    def search(self, queries: np.ndarray, k: int, alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosines of the ``k`` nearest live rows, shapes (q, k); missing slots are row -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        index = self._ready()
        vectors = self._vectors
        n = len(vectors)
        if n == 0 or k <= 0:
            return np.full((len(q), max(k, 0)), -1), np.zeros((len(q), max(k, 0)), np.float32)
        dead = 0 if alive is None else int(n - alive[:n].sum())
        want = min(n, k + dead)
        if index is None:  # exact: FAISS's exhaustive scan (IndexFlatIP's), over the one copy
            scores, rows = _faiss().knn(q, vectors, want, _faiss().METRIC_INNER_PRODUCT)
        else:
            scores, rows = index.search(q, want)
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
        return self._vectors[rows] @ np.asarray(query, np.float32).reshape(self.dim)

    def save(self, folder: Path, name: str = "dense") -> None:
        """``NAME_vectors.npy``, ``NAME.json`` and, for HNSW, the graph ``NAME.faiss`` (which holds the vectors
        too: what loading reads them from; the npy is still written, so any reader of this format finds it)."""
        folder.mkdir(parents=True, exist_ok=True)
        index = self._ready()
        np.save(folder / f"{name}_vectors.npy", self._vectors)
        meta = {"format": self.FORMAT, "dim": self.dim, "kind": self.kind,
                "hnsw_m": self.hnsw_m, "ef_search": self.ef_search, "ef_construction": self.ef_construction}
        if index is not None:
            _faiss().write_index(index, str(folder / f"{name}.faiss"))
        (folder / f"{name}.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path, name: str = "dense") -> DenseIndex:
        meta = json.loads((folder / f"{name}.json").read_text())
        if meta.get("format") != cls.FORMAT:
            raise ValueError(f"{folder}/{name}.json has format {meta.get('format')!r}, expected {cls.FORMAT}")
        index = cls(meta["dim"], meta["kind"], meta["hnsw_m"], meta["ef_search"],
                    meta.get("ef_construction", 80))  # indices saved before it was recorded were built with 80
        if meta["kind"] == "hnsw":  # the graph file holds the vectors: the npy beside it is not read
            graph = _faiss().read_index(str(folder / f"{name}.faiss"))
            graph.hnsw.efSearch = index.ef_search
            index._index, index._vectors = graph, _storage_view(graph, index.dim)
        else:
            index._vectors = np.load(folder / f"{name}_vectors.npy")
        return index
