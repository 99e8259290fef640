"""A search engine with the shop's synonyms: its lexical (and dense) retrieval sees the expanded query, while
the cascade, the re-ranking rules, spelling correction and the answer keep the query as typed.

Wrapping the engine keeps the engines themselves unaware of synonyms: the engine gets the typed query and the
added terms with the shop's weight (``expansion``), scores each added term's BM25 times that weight (a typed
term: 1), and each result's reasons say which matched word stood for which typed one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shoprank.synonyms.rules import Synonyms, explain


class WithSynonyms:
    """``engine`` answering ``search`` with ``synonyms`` applied; everything else is the engine's own."""

    def __init__(self, engine: Any, synonyms: Synonyms) -> None:
        self.engine = engine
        self.synonyms = synonyms

    def rewrap(self, engine: Any) -> WithSynonyms:
        return WithSynonyms(engine, self.synonyms)

    def search(self, query: str, *args: Any, **kwargs: Any) -> Any:
        expansion = self.synonyms.expand(query)
        if not expansion.added:
            return self.engine.search(query, *args, **kwargs)
        items, total = self.engine.search(query, *args, expansion=expansion.weighted(), **kwargs)
        return self._reasons(expansion.added)(items), total

    @staticmethod
    def _reasons(added: Any) -> Any:
        """Results -> the same results, their reasons saying which matched word stood for which typed one."""
        return lambda items: [replace(item, reasons=explain(item.reasons, added)) for item in items]

    @property
    def search_set(self) -> Any:
        """The engine's ``search_set`` with the synonyms applied (AttributeError when the engine has none)."""
        inner = self.engine.search_set

        def search_set(query: str, *args: Any, **kwargs: Any) -> Any:
            expansion = self.synonyms.expand(query)
            if not expansion.added:
                return inner(query, *args, **kwargs)
            ranked = inner(query, *args, expansion=expansion.weighted(), **kwargs)
            reasons = self._reasons(expansion.added)
            if ranked.explainer is not None:  # the head's reasons are made for the places shown
                made = ranked.explainer
                ranked.explainer = lambda positions: reasons(made(positions))
            else:
                ranked.head = reasons(ranked.head)
            ranked.tail_reasons = tuple(explain(list(ranked.tail_reasons), expansion.added))
            return ranked

        return search_set

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
