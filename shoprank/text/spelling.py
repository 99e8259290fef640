"""Typo tolerance: correct query words against the catalogue's own vocabulary (SymSpell).

The vocabulary is every lower-cased word of the indexed product text with its count. A query
word that the catalogue does not contain is replaced by the most frequent catalogue word
within edit distance 1 (words of 5-8 letters) or 2 (longer words); numbers, short words and
known words are left alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class SpellCorrector:
    FORMAT = 1

    def __init__(self, counts: dict[str, int], min_count: int = 2, min_length: int = 5) -> None:
        self.counts = {w: c for w, c in counts.items() if c >= min_count or not w.isalpha()}
        self.min_count = min_count
        self.min_length = min_length
        self._symspell: Any = None

    @classmethod
    def from_texts(cls, word_lists: Iterable[list[str]], **kwargs: Any) -> SpellCorrector:
        counts: Counter[str] = Counter()
        for words in word_lists:
            counts.update(words)
        return cls(dict(counts), **kwargs)

    def _index(self) -> Any:
        if self._symspell is None:
            from symspellpy import SymSpell

            sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
            for word, count in self.counts.items():
                if word.isalpha() and len(word) >= self.min_length - 1:
                    sym.create_dictionary_entry(word, count)
            self._symspell = sym
        return self._symspell

    def warm(self) -> None:
        """Build the lookup index now (else the first misspelt query pays for it)."""
        self._index()

    def add(self, words: Iterable[str]) -> None:
        """Add words of new products (the index is updated in place when already built)."""
        for word in words:
            self.counts[word] = self.counts.get(word, 0) + 1
            if self._symspell is not None and word.isalpha() and len(word) >= self.min_length - 1:
                self._symspell.create_dictionary_entry(word, 1)

    def correct_word(self, word: str) -> str:
        if len(word) < self.min_length or not word.isalpha() or word in self.counts:
            return word
        from symspellpy import Verbosity

        distance = 1 if len(word) <= 8 else 2
        hits = self._index().lookup(word, Verbosity.CLOSEST, max_edit_distance=distance)
        return hits[0].term if hits else word

    def correct(self, words: list[str]) -> list[str]:
        return [self.correct_word(w) for w in words]

    def suggest(self, words: list[str]) -> list[str]:
        """A looser correction, for a query nothing matched ("did you mean"): every unknown word of 4 letters
        or more may change by up to 2 edits (the closest, most frequent catalogue word)."""
        from symspellpy import Verbosity

        out = []
        for word in words:
            if len(word) < 4 or not word.isalpha() or word in self.counts:
                out.append(word)
                continue
            hits = self._index().lookup(word, Verbosity.CLOSEST, max_edit_distance=2)
            out.append(hits[0].term if hits else word)
        return out

    def save(self, folder: Path) -> None:
        payload = {"format": self.FORMAT, "min_count": self.min_count, "min_length": self.min_length,
                   "counts": self.counts}
        (folder / "spelling.json").write_text(json.dumps(payload, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> SpellCorrector:
        payload = json.loads((folder / "spelling.json").read_text())
        if payload.get("format") != cls.FORMAT:
            raise ValueError(f"spelling.json has format {payload.get('format')!r}, expected {cls.FORMAT}")
        corrector = cls({}, min_count=payload["min_count"], min_length=payload["min_length"])
        corrector.counts = payload["counts"]
        return corrector
