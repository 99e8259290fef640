"""Text analysis for lexical search: analyzers by name, unit normalisation, spelling correction."""

from __future__ import annotations

from typing import Any, Protocol

from shoprank.text.chinese import ChineseAnalyzer, has_cjk
from shoprank.text.english import EnglishAnalyzer, light_stem, words
from shoprank.text.units import normalize_units


class Analyzer(Protocol):
    name: str

    def __call__(self, text: str) -> list[str]: ...

    def config(self) -> dict[str, Any]: ...


ANALYZERS: dict[str, type] = {"english": EnglishAnalyzer, "chinese": ChineseAnalyzer}


def make_analyzer(config: dict[str, Any] | str) -> Analyzer:
    """An analyzer from its name or its saved ``config()``; an unknown name lists the valid ones."""
    params = {"name": config} if isinstance(config, str) else dict(config)
    name = params.pop("name")
    if name not in ANALYZERS:
        raise ValueError(f"unknown analyzer {name!r}; valid names: {', '.join(ANALYZERS)}")
    return ANALYZERS[name](**params)


__all__ = [
    "ANALYZERS", "Analyzer", "ChineseAnalyzer", "EnglishAnalyzer", "has_cjk", "light_stem", "make_analyzer",
    "normalize_units", "words",
]
