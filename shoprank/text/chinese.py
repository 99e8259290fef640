"""The Chinese analyzer: jieba words plus character bigrams; non-CJK runs go to the English analyzer."""

from __future__ import annotations

import re
from typing import Any

from shoprank.text.english import EnglishAnalyzer

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def char_bigrams(run: str) -> list[str]:
    """``落地窗`` -> ``落地``, ``地窗``; a single character stays as it is."""
    if len(run) < 2:
        return [run] if run else []
    return [run[i : i + 2] for i in range(len(run) - 1)]


_JIEBA: Any = None


def _jieba() -> Any:
    global _JIEBA
    if _JIEBA is None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _JIEBA = jieba
    return _JIEBA


class ChineseAnalyzer:
    """CJK runs -> jieba words (``words=True``) and character bigrams (``bigrams=True``)."""

    name = "chinese"

    def __init__(self, words: bool = True, bigrams: bool = True) -> None:
        if not (words or bigrams):
            raise ValueError("the Chinese analyzer needs words, bigrams or both")
        self.words = words
        self.bigrams = bigrams
        self.english = EnglishAnalyzer()

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        last = 0
        for match in _CJK.finditer(text):
            out.extend(self.english(text[last : match.start()]))
            run = match.group(0)
            if self.words:
                out.extend(w for w in _jieba().lcut(run) if w.strip())
            if self.bigrams:
                out.extend("#" + b for b in char_bigrams(run))  # '#' keeps bigrams apart from words
            last = match.end()
        out.extend(self.english(text[last:]))
        return out

    def config(self) -> dict[str, object]:
        return {"name": self.name, "words": self.words, "bigrams": self.bigrams}
