"""A tiny shop and a keyword mock encoder whose retrieval results are known exactly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shoprank.data.records import Judgment, Product

KEYWORDS = ["drill", "hose", "blower", "ladder", "paint", "saw", "light", "faucet"]


class KeywordEncoder:
    """One dimension per keyword (plus a bias), so cosine = shared keywords, exactly."""

    name = "keyword"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(KEYWORDS) + 1), np.float32)
        for i, text in enumerate(texts):
            low = text.lower()
            for j, word in enumerate(KEYWORDS):
                out[i, j] = float(word in low)
            out[i, -1] = 0.01
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "keyword.txt").write_text("\n".join(KEYWORDS))


def register_keyword_encoder() -> None:
    from shoprank.search.stack import ENCODERS

    ENCODERS["keyword"] = lambda folder, config: KeywordEncoder()


def tiny_catalogue() -> list[Product]:
    items = []
    for n in range(6):
        for word, kind in [("drill", "Tools"), ("hose", "Garden"), ("blower", "Garden"), ("ladder", "Tools"),
                           ("paint", "Decor"), ("saw", "Tools"), ("light", "Decor"), ("faucet", "Bath")]:
            items.append(Product(id=f"{word}-{n}", title=f"{'cordless ' if n % 2 else ''}{word} model {n}",
                                 brand="acme" if n < 3 else "bolt", category=f"Home > {kind}",
                                 price=10.0 + n, language="en"))
    return items


def tiny_judgments() -> list[Judgment]:
    """Queries 'cordless <word>' and '<word> N': the product with the word (and cordless) is best."""
    out = []
    for word in KEYWORDS:
        for extra in ["cordless", "model", "buy", "best", "cheap", "new", "pro", "mini"]:
            query = f"{extra} {word}"
            for n in range(6):
                grade = 3.0 if (extra == "cordless") == bool(n % 2) else 2.0
                out.append(Judgment(query, f"{word}-{n}", grade))
            other = KEYWORDS[(KEYWORDS.index(word) + 1) % len(KEYWORDS)]
            out.append(Judgment(query, f"{other}-0", 1.0))
    return out


def test_reasons_quote_the_query_as_typed() -> None:
    from shoprank.search.engine import reasons_for, surface_forms
    from shoprank.text import words

    query = "1/2 in. PVC elbow"
    surface = surface_forms(query)
    assert surface["0.5in"] == "1/2 in." and surface["pvc"] == "PVC"
    title = set(words("DURA 1/2 in. Schedule 40 PVC 90-Degree Elbow"))
    assert reasons_for(words(query), title, {"dense": 0.7}, surface) == [
        "matches '1/2 in.' and 'PVC' and 'elbow'", "close in meaning to the query"]
    assert reasons_for(words("saw"), {"drill"}, {}, surface_forms("saw")) == ["related to the query"]
