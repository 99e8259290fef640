"""A tiny shop and a keyword mock encoder whose retrieval results are known exactly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def train_tiny_search(shop: Any, encoder: Any = None, encoder_name: str = "keyword", seed_data: bool = True,
                      params: dict[str, Any] | None = None, threshold: float | None = None
                      ) -> tuple[Any, dict[str, Any]]:
    """Train the tiny shop's search stack on the keyword encoder (no fine-tuning, no cross-encoder) and publish
    it; ``seed_data`` stores the tiny catalogue and judgments first; ``threshold``: the result set's dense
    threshold (None: calibrated on the validation queries, as training does). Returns (stack, training summary)."""
    from dataclasses import replace

    from shoprank.bundles import publish
    from shoprank.search.data import load_search_data
    from shoprank.search.train import profile_config, train_search

    register_keyword_encoder()
    with shop.store() as store:
        if seed_data:
            store.upsert_products(tiny_catalogue())
            store.upsert_judgments(tiny_judgments())
        data = load_search_data(store, test_share=0.2)
        version = store.catalog_version()
    config = profile_config("quick")
    config = replace(config, stack=replace(config.stack, encoder=encoder_name, lexical_k=20, dense_k=20,
                                           dense_threshold=threshold),
                     biencoder=None, cross=None, fusion_share=0.4, valid_share=0.2)
    config.fusion.min_data_in_leaf = 2
    stack, summary = train_search(data, config, progress=False, report=lambda s: None,
                                  encoder=encoder if encoder is not None else KeywordEncoder())
    with publish(shop.models_path, "search", {"catalog_version": version, "holdout": 0.2, **(params or {})}) as folder:
        stack.save(folder)
    return stack, summary


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
