"""A large catalogue from real product text: Home Depot and Amazon titles recombined with real attribute phrases.

Synthetic scale, real text. The sources are every Home Depot product title (``homedepot/products.csv`` and the
judged extras, as ``shoprank datasets import homedepot`` reads them) and every Amazon Video Games item title
(``amazon_games/Games-6k.item``). Product ``i`` takes source title ``i mod S`` (the S sources in a seeded order):

* the first S products are the real products unchanged (Home Depot: title and, as brand, the title's first word;
  Amazon: title and the importer's category ``Video Games``);
* product ``i >= S`` is variant ``i // S`` of its source: the title with a real colour or finish phrase
  (a colour word list matched against Home Depot titles, kept where it occurs) and/or a real size phrase (the
  2,000 most frequent measures of Home Depot titles, ``3/4 in. x 10 ft.``) appended, chosen by a seeded generator
  weighted by how often each occurs; they are also stored as attributes (``color``, ``size``), and the price is
  drawn around the source's.

Vectors: embedding every one of a million texts with the int8 ONNX tower takes hours on two cores, so each part
is embedded once with the product's own path and a product's vector is composed from its parts:
``normalise(v(source text) + w * (v(colour) + v(size)))``, ``w`` chosen on a sample of real embeddings of whole
recombined texts (the highest mean cosine; the cosine of composed and real vectors on that sample is reported).
Latency and memory depend on the count and dimension of the vectors, not on their values; recall figures on
composed vectors are about the index, not about text quality.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = (
    "Oil-Rubbed Bronze", "Brushed Nickel", "Satin Nickel", "Polished Chrome", "Stainless Steel", "Matte Black",
    "Antique Brass", "Polished Brass", "Venetian Bronze", "Chrome", "White", "Black", "Brown", "Gray", "Grey", "Beige",
    "Red", "Blue", "Green", "Silver", "Bronze", "Almond", "Bisque", "Ivory", "Natural", "Clear", "Espresso",
    "Cherry", "Oak", "Walnut", "Gold", "Copper", "Tan", "Cream", "Charcoal", "Navy", "Orange", "Yellow", "Pink",
    "Purple", "Biscuit", "Mahogany", "Maple", "Pewter", "Slate", "Sand", "Taupe", "Linen", "Aged Bronze",
)
SIZE = re.compile(r"\b\d+(?:[./-]\d+)*(?:\s?-?\s?(?:in\.|ft\.|gal\.|oz\.|lb\.|qt\.|mm|cm|sq\. ft\.|Watt|Volt|Amp|"
                  r"BTU|Gauge))(?:\s?x\s?\d+(?:[./-]\d+)*\s?(?:in\.|ft\.|mm|cm))*")
SIZES_KEPT = 2000
LENGTH = 32  # tokens of product text (the search stack's doc_max_length)


def data_root() -> Path:
    return Path(os.environ.get("SHOPRANK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


@dataclass
class Source:
    title: str
    brand: str
    category: str
    origin: str  # "homedepot" or "amazon"

    def text(self) -> str:
        """The text shoprank embeds for the unchanged product (``Product.text``)."""
        return " | ".join(part for part in (self.title, self.brand, self.category) if part)


@dataclass
class Corpus:
    """The real parts a catalogue is recombined from."""

    sources: list[Source]
    colours: list[str]
    colour_weights: np.ndarray
    sizes: list[str]
    size_weights: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def load_corpus(root: Path | None = None) -> Corpus:
    import html

    from shoprank.datasets import amazon_games, atomic, homedepot

    root = root or data_root()
    hd_rows = homedepot.load(root / homedepot.FOLDER)
    hd = [raw["title"] for _, raw in hd_rows.products]
    games = [html.unescape(raw["title"]) for _, raw in
             atomic.load_items(root / amazon_games.FOLDER / "Games-6k.item")]
    sources = [Source(t, t.split()[0] if t.split() else "", "", "homedepot") for t in hd]
    sources += [Source(t, "", "Video Games", "amazon") for t in games]
    colour_counts = Counter()
    size_counts: Counter[str] = Counter()
    any_colour = re.compile(r"\b(" + "|".join(re.escape(c) for c in COLOURS) + r")\b")
    for title in hd:
        colour_counts.update(set(any_colour.findall(title)))
        size_counts.update(m.group(0).strip() for m in SIZE.finditer(title))
    colours = [c for c, _ in colour_counts.most_common()]
    sizes = [s for s, _ in size_counts.most_common(SIZES_KEPT)]
    cw = np.asarray([colour_counts[c] for c in colours], np.float64)
    sw = np.asarray([size_counts[s] for s in sizes], np.float64)
    return Corpus(sources, colours, cw / cw.sum(), sizes, sw / sw.sum(),
                  {"homedepot_titles": len(hd), "amazon_titles": len(games), "colours": len(colours),
                   "sizes": len(sizes)})


@dataclass
class Recipe:
    """How each product is made: its source, and the colour / size index appended (-1: none)."""

    source: np.ndarray  # (n,) int
    colour: np.ndarray  # (n,) int, -1 = none
    size: np.ndarray  # (n,) int, -1 = none
    price: np.ndarray  # (n,) float


def recipe(corpus: Corpus, n: int, seed: int = 0, sources: int | None = None) -> Recipe:
    """``sources``: draw on only that many source titles (a quick run with variants), default all."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(corpus.sources))[:sources]
    s = len(order)
    source = order[np.arange(n) % s]
    variant = np.arange(n) // s
    kind = rng.integers(0, 3, n)  # 0 colour, 1 size, 2 both
    colour = np.where((variant > 0) & (kind != 1), rng.choice(len(corpus.colours), n, p=corpus.colour_weights), -1)
    size = np.where((variant > 0) & (kind != 0), rng.choice(len(corpus.sizes), n, p=corpus.size_weights), -1)
    base_price = np.exp(rng.normal(3.3, 1.0, len(corpus.sources)))  # a price level per source, variants around it
    price = np.round(base_price[source] * np.where(variant > 0, rng.uniform(0.8, 1.25, n), 1.0), 2)
    return Recipe(source, colour, size, price)


def product_record(corpus: Corpus, r: Recipe, i: int) -> dict[str, Any]:
    src = corpus.sources[int(r.source[i])]
    title = src.title
    attributes: dict[str, str] = {}
    if r.colour[i] >= 0:
        attributes["color"] = corpus.colours[int(r.colour[i])]
        title += f" in {attributes['color']}"
    if r.size[i] >= 0:
        attributes["size"] = corpus.sizes[int(r.size[i])]
        title += f", {attributes['size']}"
    record: dict[str, Any] = {"id": f"p{i}", "title": title, "price": float(r.price[i]), "language": "en"}
    if src.brand:
        record["brand"] = src.brand
    if src.category:
        record["category"] = src.category
    if attributes:
        record["attributes"] = attributes
    return record


def product_ids(n: int) -> list[str]:
    return [f"p{i}" for i in range(n)]


def write_jsonl(corpus: Corpus, r: Recipe, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(len(r.source)):
            handle.write(json.dumps(product_record(corpus, r, i), ensure_ascii=False) + "\n")
    return path.stat().st_size


def record_text(record: dict[str, Any]) -> str:
    """``Product.text`` of a record, without building the Product."""
    from shoprank.data.records import Product

    return Product(id=record["id"], title=record["title"], brand=record.get("brand", ""),
                   category=record.get("category", "")).text()


# vectors -----------------------------------------------------------------------------------------
@dataclass
class Parts:
    """Real embeddings of every part: sources (rows of ``corpus.sources``), colours, sizes."""

    sources: np.ndarray
    colours: np.ndarray
    sizes: np.ndarray
    embedded: int  # texts embedded in this run (the rest came from caches)
    read_from_cache: int
    seconds: float


def embed_parts(corpus: Corpus, r: Recipe, encoder: Any, cache_dirs: Sequence[Path], own_cache: Path) -> Parts:
    """Vectors of the sources, colour and size phrases the catalogue ``r`` uses.

    Texts go through ``shoprank.search.vectors.base_vectors`` (the cache training and evaluation use, keyed by a
    hash of the texts): Home Depot titles are read from a shop's cache when one in ``cache_dirs`` holds the whole
    imported catalogue's vectors; everything else is embedded with ``encoder.encode_docs`` (the int8 ONNX
    document tower) and cached in ``own_cache``."""
    import time

    from shoprank.data.records import Product
    from shoprank.search.vectors import base_vectors, cache_file

    began = time.perf_counter()
    dim = 384
    out = np.zeros((len(corpus.sources), dim), np.float32)
    done = np.zeros(len(corpus.sources), bool)
    embedded = cached = 0
    hd_rows = np.asarray([i for i, s in enumerate(corpus.sources) if s.origin == "homedepot"])
    hd_titles = [corpus.sources[i].title for i in hd_rows]
    for folder in [*cache_dirs, own_cache]:
        path = cache_file(folder, hd_titles, LENGTH)
        if path.is_file():
            vectors = np.load(path)
            if len(vectors) == len(hd_rows):
                # the cached texts are the titles alone; the products' text adds the brand (the title's first
                # word) after " | ": the composition check on real embeddings measures what that leaves out
                out[hd_rows] = vectors
                done[hd_rows] = True
                cached += len(hd_rows)
                break
    used_sources, used_colours, used_sizes = np.unique(r.source), r.colour, r.size
    need = np.asarray(sorted(set(used_sources.tolist()) - set(np.flatnonzero(done).tolist())), np.int64)
    if len(need):
        products = [Product(id=f"s{i}", title=corpus.sources[i].title, brand=corpus.sources[i].brand,
                            category=corpus.sources[i].category) for i in need]
        hit = cache_file(own_cache, [p.text() for p in products], LENGTH).is_file()
        out[need] = base_vectors(products, encoder, LENGTH, own_cache, progress=True)
        cached, embedded = (cached + len(need), embedded) if hit else (cached, embedded + len(need))
    colours = np.zeros((len(corpus.colours), dim), np.float32)
    sizes = np.zeros((len(corpus.sizes), dim), np.float32)
    used_c = np.unique(used_colours[used_colours >= 0])
    used_z = np.unique(used_sizes[used_sizes >= 0])
    phrase = [Product(id=f"c{i}", title=corpus.colours[i]) for i in used_c]
    phrase += [Product(id=f"z{i}", title=corpus.sizes[i]) for i in used_z]
    if phrase:
        hit = cache_file(own_cache, [p.text() for p in phrase], LENGTH).is_file()
        pv = base_vectors(phrase, encoder, LENGTH, own_cache)
        colours[used_c], sizes[used_z] = pv[: len(used_c)], pv[len(used_c):]
        cached, embedded = (cached + len(phrase), embedded) if hit else (cached, embedded + len(phrase))
    return Parts(out, colours, sizes, embedded, cached, time.perf_counter() - began)


def compose(parts: Parts, r: Recipe, weight: float, rows: np.ndarray | None = None,
            chunk: int = 100_000) -> np.ndarray:
    """(n, d) unit vectors: source + weight * (colour + size), normalised. ``rows``: only these products."""
    rows = np.arange(len(r.source)) if rows is None else rows
    out = np.empty((len(rows), parts.sources.shape[1]), np.float32)
    for start in range(0, len(rows), chunk):
        idx = rows[start : start + chunk]
        v = parts.sources[r.source[idx]].copy()
        c, z = r.colour[idx], r.size[idx]
        v[c >= 0] += weight * parts.colours[c[c >= 0]]
        v[z >= 0] += weight * parts.sizes[z[z >= 0]]
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        out[start : start + chunk] = v
    return out


def iter_records(corpus: Corpus, r: Recipe, rows: Sequence[int]) -> Iterator[dict[str, Any]]:
    for i in rows:
        yield product_record(corpus, r, int(i))
