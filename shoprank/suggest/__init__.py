"""Query suggestions (autocomplete): logged queries that found results, catalogue titles and categories."""

from __future__ import annotations

from shoprank.suggest.index import SuggestConfig, SuggestIndex, build_index, normalise
from shoprank.suggest.service import ShopSuggestions

__all__ = ["ShopSuggestions", "SuggestConfig", "SuggestIndex", "build_index", "normalise"]
