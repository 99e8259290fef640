"""Candidate retrieval: field-weighted BM25 and the FAISS vector index."""

from __future__ import annotations

from shoprank.retrieval.bm25 import BM25Config, BM25Index
from shoprank.retrieval.dense import DenseIndex

__all__ = ["BM25Config", "BM25Index", "DenseIndex"]
