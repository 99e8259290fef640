"""The English analyzer: lower-casing, units, stop words, light (plural) stemming."""

from __future__ import annotations

import re
import unicodedata

from shoprank.text.units import normalize_units

STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have how i if in into is it its of on or our so "
    "than that the their then there these this those to was were what when where which while who "
    "will with without x you your".split()
)

_TOKEN = re.compile(r"\d+(?:\.\d+)?[a-z]*|[a-z]+[a-z0-9]*")
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)([a-z]+)$")
_MAX_SEEN = 500_000  # distinct words remembered per analyzer (a few tens of MB at most)


def light_stem(word: str) -> str:
    """Plural-only stemming (Lucene's EnglishMinimalStemmer): ladders -> ladder, batteries -> battery."""
    if len(word) < 4 or word[-1] != "s" or word[0].isdigit():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith(("us", "ss")):
        return word
    return word[:-1]


def words(text: str) -> list[str]:
    """Lower-cased, unit-normalised word tokens before stop words and stemming."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _TOKEN.findall(normalize_units(text))


class EnglishAnalyzer:
    """``text -> tokens``. A number with a unit also yields the bare number (``0.5in`` -> ``0.5``)."""

    name = "english"

    def __init__(self, stop_words: bool = True, stem: bool = True) -> None:
        self.stop_words = stop_words
        self.stem = stem
        self._seen: dict[str, tuple[str, ...]] = {}  # word -> its tokens: a catalogue repeats its words

    def word_tokens(self, word: str) -> tuple[str, ...]:
        """The tokens of one word: none for a stop word, the word and its bare number for ``0.5in``."""
        if self.stop_words and word in STOP_WORDS:
            return ()
        match = _NUMBER.match(word)
        if match:
            return (word, match.group(1))
        return (light_stem(word) if self.stem else word,)

    def tokens_of(self, raw_words: list[str]) -> list[str]:
        seen = self._seen
        out: list[str] = []
        for word in raw_words:
            tokens = seen.get(word)
            if tokens is None:
                tokens = self.word_tokens(word)
                if len(seen) < _MAX_SEEN:
                    seen[word] = tokens
            out += tokens
        return out

    def __call__(self, text: str) -> list[str]:
        return self.tokens_of(words(text))

    def config(self) -> dict[str, object]:
        return {"name": self.name, "stop_words": self.stop_words, "stem": self.stem}
