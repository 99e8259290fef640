"""The search stack: catalogue rows, lexical and vector indices, the cross-encoder and the fusion rankers.

One object serves training, evaluation, the batch commands and the online engine:
``candidates`` -> ``features`` -> a fusion model's scores. Three fusion models are kept:

* ``fast``   - no cross-encoder feature; the online default and the first-stage order,
* ``full``   - the cross-encoder scores the first ``rerank_top`` candidates of ``fast``,
* ``rerank`` - for a given list of products (every one scored by the cross-encoder).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.data.records import Product
from shoprank.ranking.features import CE_FEATURES, FEATURES, ItemStats, RowFacts, compute_features
from shoprank.ranking.fusion import FusionRanker
from shoprank.retrieval.bm25 import BM25Config, BM25Index
from shoprank.retrieval.dense import DenseIndex
from shoprank.search.catalog import Catalog
from shoprank.text import make_analyzer, words
from shoprank.text.spelling import SpellCorrector

log = logging.getLogger("shoprank.search")

FUSION_MODELS = ("fast", "full", "rerank")
ONNX_DIR = "query_onnx"  # the bundle's ONNX export of the query tower
FAST_FEATURES = [f for f in FEATURES if f not in CE_FEATURES]
PREFIX_MIN = 3  # letters a query's unfinished last word needs before it matches as a prefix
PREFIX_TERMS = 5  # catalogue words it may stand for, the most common first


@dataclass
class StackConfig:
    language: str = "en"  # "en" or "zh": picks the analyzer and the default encoder
    encoder: str = "biencoder"  # biencoder (MiniLM), dual (fine-tuned query tower + MiniLM), e5 (frozen) or
    # none (lexical only: the baseline stack before the catalogue's embeddings are ready)
    lexical_k: int = 200  # BM25 candidates per query
    dense_k: int = 200  # ANN candidates per query
    rerank_top: int = 30  # candidates the cross-encoder scores in a full search
    spelling: bool = True  # correct query words against the catalogue vocabulary
    doc_max_length: int = 32  # tokens of product text for the encoders (titles rarely need more)
    index_kind: str = "auto"  # FAISS: auto (exact up to 50k products, HNSW above), flat or hnsw
    cross_max_length: int = 48  # tokens of (query, product text) for the cross-encoder
    dense_threshold: float | None = None  # cosine at which a product matches a query by meaning alone, calibrated
    # on validation queries (shoprank.search.matching); None: the encoder's default (matching.BASE_THRESHOLDS)

    def __post_init__(self) -> None:
        if self.dense_threshold is not None and not -1.0 <= self.dense_threshold <= 1.0:
            raise ValueError(f"dense_threshold is a cosine: between -1 and 1 (or None), got {self.dense_threshold}")


DOC_TOWER = "doc_tower"
"""A bundle's own document tower (a distilled one), beside ``biencoder/`` (the query tower)."""


def product_text(product: Product) -> str:
    return product.text()


def rrf(*rankings: np.ndarray, k: int = 60) -> dict[int, float]:
    """Reciprocal-rank fusion of ranked row lists: row -> sum of 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[int(row)] = scores.get(int(row), 0.0) + 1.0 / (k + rank)
    return scores


@dataclass
class Candidates:
    rows: np.ndarray  # (n,) catalogue rows
    bm25: np.ndarray  # (n,) weighted BM25
    dense: np.ndarray  # (n,) cosine with the query
    matched: int  # products the query matched before truncation


class SearchStack:
    def __init__(self, config: StackConfig, catalog: Catalog, bm25: BM25Index, dense: DenseIndex,
                 encoder: Any, spell: SpellCorrector | None = None, cross: Any = None,
                 fusion: dict[str, FusionRanker] | None = None, stats: ItemStats | None = None) -> None:
        self.config = config
        self.catalog = catalog
        self.bm25 = bm25
        self.dense = dense
        self.encoder = encoder
        self.spell = spell
        self.cross = cross
        self.fusion = fusion or {}
        self.stats = stats or ItemStats()
        self.titles = RowFacts()
        self.query_tower: Any = None
        """What embeds one online query (:meth:`embed_query`): an ONNX export of the query tower once
        :meth:`use_onnx_query_tower` found or made one, else the PyTorch encoder."""

    @property
    def lexical_only(self) -> bool:
        """No text encoder (``encoder="none"``): candidates and order come from BM25 alone."""
        return self.config.encoder == "none"

    # building -----------------------------------------------------------------------------------
    @classmethod
    def build(cls, products: Sequence[Product], encoder: Any, config: StackConfig, progress: bool = False,
              vectors: np.ndarray | None = None, bm25_config: BM25Config | None = None) -> SearchStack:
        analyzer = make_analyzer("chinese" if config.language == "zh" else "english")
        catalog = Catalog([p.id for p in products])
        catalog.products = list(products)
        bm25 = BM25Index(analyzer, bm25_config).build(products)
        spell = None
        if config.spelling and config.language != "zh":
            spell = SpellCorrector.from_texts(words(p.title + " " + p.brand + " " + p.category) for p in products)
        if vectors is None:
            vectors = encoder.encode_docs([product_text(p) for p in products], progress=progress)
        dense = DenseIndex(vectors.shape[1], config.index_kind).build(vectors)
        return cls(config, catalog, bm25, dense, encoder, spell)

    # queries ------------------------------------------------------------------------------------
    def corrected(self, query: str) -> str:
        if self.spell is None:
            return query
        return " ".join(self.spell.correct(words(query)))

    def correction(self, query: str) -> str | None:
        """The spelling-corrected query when the spelling index changed a word ("did you mean"), else None."""
        if self.spell is None:
            return None
        typed = words(query)
        fixed = self.spell.correct(typed)
        return " ".join(fixed) if fixed != typed else None

    def prefix_tokens(self, query: str) -> list[str]:
        """Catalogue words the query's last word may be the start of ("espr" -> "espresso"), when that word is
        not itself a catalogue word (a finished word is left alone: "pan" does not become "panel")."""
        if self.config.language == "zh":
            return []
        typed = words(query)
        if not typed or len(typed[-1]) < PREFIX_MIN or not typed[-1].isalpha():
            return []
        last = typed[-1]
        analyzed = self.bm25.analyzer(last)
        if any(t in self.bm25.vocab for t in analyzed):
            return []
        return self.bm25.prefix_terms(last, PREFIX_TERMS)

    def tokens(self, query: str) -> list[str]:
        """Analyzed query terms, with the spelling-corrected ones and the last word's completions added."""
        tokens = self.bm25.analyzer(query)
        if self.spell is not None:
            seen = set(tokens)
            tokens += [t for t in self.bm25.analyzer(self.corrected(query)) if t not in seen]
        seen = set(tokens)
        tokens += [t for t in self.prefix_tokens(query) if t not in seen]
        return tokens

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Batch query embeddings with the PyTorch encoder (training, evaluation, batch commands)."""
        return self.encoder.encode_queries(list(queries))

    def embed_query(self, query: str) -> np.ndarray:
        """One online query's embedding, shape (dim,): the ONNX query tower when there is one."""
        tower = self.query_tower if self.query_tower is not None else self.encoder
        return tower.encode_queries([query])[0]

    def query_tower_dir(self, folder: Path) -> Path | None:
        """The PyTorch query tower an ONNX export is made from (None: this encoder has no such tower)."""
        if self.config.encoder not in ("biencoder", "dual"):
            return None
        if (folder / "biencoder").is_dir():
            return folder / "biencoder"
        if self.config.encoder == "biencoder":
            from shoprank.encoders.text import resolve_model_path

            return resolve_model_path(None)
        return None

    def use_onnx_query_tower(self, folder: Path, cache_dir: Path | None) -> str:
        """Serve queries from the bundle's ONNX tower (``query_onnx/``), else from an export cached in
        ``cache_dir`` (made now when missing). Says what happened; on any failure PyTorch keeps the job."""
        from shoprank.encoders import onnx_tower

        source = self.query_tower_dir(folder)
        if source is None:
            return f"pytorch (the {self.config.encoder} encoder has no query tower to export)"
        try:
            onnx_dir = folder / ONNX_DIR
            if not (onnx_dir / onnx_tower.META).is_file() or \
                    onnx_tower.read_info(onnx_dir).max_length != self.config.doc_max_length:
                if cache_dir is None:
                    return "pytorch (the bundle has no ONNX query tower and there is no cache folder)"
                onnx_dir = onnx_tower.cached_export(source, cache_dir, self.config.doc_max_length)
            info = onnx_tower.read_info(onnx_dir)
            self.query_tower = onnx_tower.OnnxQueryTower.load(onnx_dir)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the PyTorch tower serving
            log.warning("ONNX query tower unavailable (%s); queries are embedded with PyTorch", exc)
            return f"pytorch ({exc})"
        return f"onnx {'int8' if info.quantized else 'float'} (cosine with PyTorch >= {info.min_cosine:.4f})"

    def export_query_tower(self, folder: Path) -> str:
        """Write the ONNX query tower into a bundle being published (``folder/query_onnx``), if there is one."""
        from shoprank.encoders import onnx_tower

        source = self.query_tower_dir(folder)
        if source is None:
            return "none"
        info = onnx_tower.export_query_tower(source, folder / ONNX_DIR, self.config.doc_max_length)
        return f"{'int8' if info.quantized else 'float'} ONNX, cosine with PyTorch >= {info.min_cosine:.4f}"

    def candidates(self, tokens: list[str], qvec: np.ndarray, lexical_k: int | None = None,
                   dense_k: int | None = None, weights: Sequence[float] | None = None) -> Candidates:
        """BM25 top ``lexical_k`` united with ANN top ``dense_k`` (live rows only); ``weights``: one per token
        (:meth:`BM25Index.score`, default all 1)."""
        lexical_k = self.config.lexical_k if lexical_k is None else lexical_k
        dense_k = self.config.dense_k if dense_k is None else dense_k
        scores = self.bm25.score(tokens, weights)
        scores[~self.catalog.alive[: len(scores)]] = 0.0
        positive = np.flatnonzero(scores > 0)
        if len(positive) > lexical_k:
            positive = positive[np.argpartition(-scores[positive], lexical_k - 1)[:lexical_k]]
        lex_rows = positive[np.argsort(-scores[positive], kind="stable")]
        if self.lexical_only:
            return Candidates(lex_rows, scores[lex_rows], np.zeros(len(lex_rows), np.float32), len(positive))
        dense_rows, _ = self.dense.search(qvec[None, :], dense_k, self.catalog.alive)
        dense_rows = dense_rows[0][dense_rows[0] >= 0]
        rows = np.asarray(list(dict.fromkeys([*lex_rows.tolist(), *dense_rows.tolist()])), dtype=np.int64)
        matched = int((scores > 0).sum()) + len(set(dense_rows.tolist()) - set(lex_rows.tolist()))
        return Candidates(rows, scores[rows] if len(rows) else np.zeros(0, np.float32),
                          self.dense.cosine(qvec, rows), matched)

    def features(self, query: str, tokens: list[str], rows: np.ndarray, dense: np.ndarray,
                 ce: np.ndarray | None = None, weights: Sequence[float] | None = None) -> np.ndarray:
        products = [self.catalog.products[r] for r in rows]
        return compute_features(self.bm25, tokens, query, rows, products, dense, ce, self.stats, self.titles,
                                weights)

    def cross_scores(self, query: str, rows: np.ndarray) -> np.ndarray:
        texts = [product_text(self.catalog.products[r]) for r in rows]
        return self.cross.score([query] * len(rows), texts)

    def judged_scores(self, query: str, tokens: list[str], rows: np.ndarray, qvec: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None]:
        """Scores of the given catalogue rows for ``query``: what re-ranking a given list serves
        (``SearchEngine.rerank``, ``shoprank run rerank``) and what the judged re-ranking protocol scores.

        Returns (scores, dense cosines, cross-encoder scores or None, the fusion model used or None): the
        ``rerank`` ranker with the cross-encoder loaded, else ``fast``; without one, the cross-encoder's or the
        dense scores."""
        dense = self.dense.cosine(qvec, rows)
        ce = self.cross_scores(query, rows) if self.cross is not None else None
        model = "rerank" if ce is not None and "rerank" in self.fusion else "fast"
        if model in self.fusion:
            return self.score(model, self.features(query, tokens, rows, dense, ce)), dense, ce, model
        return (dense if ce is None else ce), dense, ce, None

    def score(self, model: str, feats: np.ndarray) -> np.ndarray:
        ranker = self.fusion[model]
        columns = [FEATURES.index(f) for f in ranker.features]
        return ranker.predict(feats[:, columns])

    def rank(self, query: str, tokens: list[str], cand: Candidates, use_cross: bool, qvec: np.ndarray | None = None,
             weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Order candidates: ``fast`` fusion, then (``use_cross``) the cross-encoder on its top and ``full``.
        ``weights``: one per token, for the lexical features (:func:`compute_features`).

        Returns (order of candidate positions, scores in that order, features)."""
        if not self.fusion:  # no model reads the features: BM25 alone or reciprocal-rank fusion orders
            feats = np.full((len(cand.rows), len(FEATURES)), np.nan, np.float32)
        else:
            feats = self.features(query, tokens, cand.rows, cand.dense, weights=weights)
        if "fast" in self.fusion:
            fast = self.score("fast", feats)
        elif self.lexical_only:
            fast = cand.bm25.astype(np.float32)
        else:  # no trained fusion: reciprocal-rank fusion of BM25 and dense
            fused = rrf(cand.rows[np.argsort(-cand.bm25, kind="stable")], cand.rows[np.argsort(-cand.dense)])
            fast = np.asarray([fused[int(r)] for r in cand.rows], np.float32)
        if not (use_cross and self.cross is not None and "full" in self.fusion) or len(cand.rows) == 0:
            order = np.argsort(-fast, kind="stable")
            return order, fast[order], feats
        top = np.argsort(-fast, kind="stable")[: self.config.rerank_top]
        ce = np.full(len(cand.rows), np.nan, np.float32)
        ce[top] = self.cross_scores(query, cand.rows[top])
        feats = self.features(query, tokens, cand.rows, cand.dense, ce, weights)
        full = self.score("full", feats)
        order = np.argsort(-full, kind="stable")
        return order, full[order], feats

    # catalogue changes ----------------------------------------------------------------------------
    def upsert(self, products: Sequence[Product]) -> None:
        if not products:
            return
        products = list({p.id: p for p in products}.values())
        vectors = self.encoder.encode_docs([product_text(p) for p in products])
        self.catalog.append(products)
        self.bm25.add(products)
        self.dense.add(vectors)
        if self.spell is not None:
            self.spell.add(w for p in products for w in words(p.title + " " + p.brand + " " + p.category))

    def delete(self, ids: Sequence[str]) -> int:
        return self.catalog.remove(ids)

    # persistence --------------------------------------------------------------------------------
    def save(self, folder: Path, *, include_encoder: bool = True) -> None:
        """Write the stack's files; ``include_encoder`` off leaves the bi-encoder out (an untuned base model,
        which loading finds where it is installed)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stack.json").write_text(json.dumps({"format": 1, "config": asdict(self.config)}))
        self.catalog.save(folder)
        self.bm25.save(folder / "lexical")
        self.dense.save(folder / "vectors")
        if self.spell is not None:
            self.spell.save(folder)
        self.stats.save(folder)
        if self.config.encoder in ("biencoder", "dual") and include_encoder:
            self.encoder.save(folder / "biencoder")
            if getattr(self.encoder, "ship_docs", False):
                self.encoder.save_docs(folder / DOC_TOWER)
        if self.cross is not None:
            self.cross.save(folder / "cross_encoder")
        for name, ranker in self.fusion.items():
            ranker.save(folder, f"fusion_{name}")

    @classmethod
    def load(cls, folder: Path, products: Sequence[Product] | None = None, load_cross: bool = True, *,
             lazy_encoder: bool = False) -> SearchStack:
        """``lazy_encoder``: load the text encoder on first use (:class:`LazyEncoder`), for a caller that embeds
        queries with the ONNX tower and needs PyTorch only to embed a new product."""
        meta = json.loads((folder / "stack.json").read_text())
        config = StackConfig(**meta["config"])
        catalog = Catalog.load(folder)
        if products is not None:
            catalog.attach(products)
        spell = SpellCorrector.load(folder) if (folder / "spelling.json").exists() else None
        encoder = LazyEncoder(lambda: load_encoder(config, folder)) if lazy_encoder else load_encoder(config, folder)
        cross = None
        if load_cross and (folder / "cross_encoder").is_dir():
            from shoprank.encoders.cross_encoder import CrossEncoderRanker

            cross = CrossEncoderRanker.load(folder / "cross_encoder", config.cross_max_length)
        fusion = {name: FusionRanker.load(folder, f"fusion_{name}") for name in FUSION_MODELS
                  if (folder / f"fusion_{name}.json").exists()}
        return cls(config, catalog, BM25Index.load(folder / "lexical"), DenseIndex.load(folder / "vectors"),
                   encoder, spell, cross, fusion, ItemStats.load(folder))


class LazyEncoder:
    """A text encoder loaded on first use (any attribute), once, under a lock: with the ONNX query tower serving
    queries, PyTorch and sentence-transformers load only when a product must be embedded."""

    def __init__(self, load: Any) -> None:
        import threading

        self._load = load
        self._encoder: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def get(self) -> Any:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load()
        return self._encoder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def _load_e5(folder: Path | None, config: StackConfig) -> Any:
    from shoprank.encoders.biencoder import E5Encoder

    return E5Encoder()


def _load_biencoder(folder: Path | None, config: StackConfig) -> Any:
    from shoprank.encoders.biencoder import BiEncoder

    path = folder / "biencoder" if folder is not None and (folder / "biencoder").is_dir() else None
    return BiEncoder.load(path, max_length=config.doc_max_length)


def _load_dual(folder: Path | None, config: StackConfig) -> Any:
    from shoprank.encoders.biencoder import BiEncoder, DualEncoder

    if folder is None or not (folder / "biencoder").is_dir():
        raise ValueError("a dual encoder needs the bundle's fine-tuned query tower (biencoder/)")
    own = (folder / DOC_TOWER).is_dir()  # a distilled document tower shipped with the bundle
    return DualEncoder(BiEncoder.load(folder / "biencoder", config.doc_max_length),
                       lambda: BiEncoder.load(folder / DOC_TOWER if own else None, config.doc_max_length),
                       ship_docs=own)


def base_document_tower(encoder: Any) -> bool:
    """Whether ``encoder``'s product vectors are the base model's (so a catalogue's cached base vectors hold)."""
    return not getattr(encoder, "ship_docs", False)


class NoEncoder:
    """The ``none`` encoder of a lexical-only stack: one zero per text, so the index arrays keep their rows."""

    dim = 1

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dim), np.float32)

    def encode_docs(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return np.zeros((len(texts), self.dim), np.float32)


def _load_none(folder: Path | None, config: StackConfig) -> Any:
    return NoEncoder()


ENCODERS: dict[str, Any] = {"biencoder": _load_biencoder, "dual": _load_dual, "e5": _load_e5, "none": _load_none}
"""Encoder name -> loader(bundle folder or None, config). Tests register mock encoders here."""


def load_encoder(config: StackConfig, folder: Path | None = None) -> Any:
    """The stack's text encoder: the bundle's fine-tuned bi-encoder, the base model, or frozen e5."""
    if config.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {config.encoder!r}; valid names: {', '.join(ENCODERS)}")
    return ENCODERS[config.encoder](folder, config)
