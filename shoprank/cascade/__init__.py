"""One cascade for search, "for you", "similar items" and "bought together": candidates, ranking, re-ranking."""

from shoprank.cascade.base import (
    SURFACES,
    Candidates,
    CandidateSource,
    Page,
    Ranker,
    Request,
    clean_query,
    top_k,
    top_k_rows,
)
from shoprank.cascade.cascade import DEPTH, MATCH_LIMIT, OVER_FETCH, Cascade, MissingModel, pairs

__all__ = [
    "OVER_FETCH",
    "DEPTH",
    "MATCH_LIMIT",
    "SURFACES",
    "CandidateSource",
    "Candidates",
    "Cascade",
    "MissingModel",
    "Page",
    "Ranker",
    "Request",
    "clean_query",
    "pairs",
    "top_k",
    "top_k_rows",
]
