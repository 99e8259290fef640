"""Build and publish the baseline bundles: the untrained stack a shop serves before anything is trained.

* search, at once: BM25 over the catalogue (the ``none`` encoder); hybrid once the catalogue's embeddings with
  the untuned base encoder are computed (MiniLM, multilingual e5 for Chinese): BM25 and dense candidates in
  reciprocal-rank fusion, the order :class:`~shoprank.search.stack.SearchStack` gives without a fusion model.
* recommendations: trending items, item-to-item co-visitation and bought-together tables from the events so far,
  and text similarity (keyword hashing at once, the base encoder's vectors once computed).

Both are ordinary ``search`` / ``recommend`` bundles served by the ordinary engines, marked
``params["stack"] = "baseline"`` with versions named ``baseline-...`` (what each answer's ``model_version``
says). A trained bundle always wins: nothing here publishes over one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shoprank.bundles import latest_version, publish
from shoprank.data.records import Product
from shoprank.retention import PREFIX, is_baseline, prune
from shoprank.shops import Shop

log = logging.getLogger("shoprank.baseline")

HASH_ENCODER = "hash:256"  # the recommender's text vectors until the base encoder's are ready
TEXT_LENGTH = 32  # tokens of product text for the base encoder (the search stack's doc_max_length)
CHUNK = 2048  # products embedded between two progress reports (one length-bucketed ONNX call each)

Progress = Callable[[int, int], None]
"""(done, total) products embedded."""


def trained_version(shop: Shop, kind: str) -> str | None:
    """The latest trained (non-baseline) bundle of ``kind``, if the shop's LATEST points at one."""
    latest = latest_version(shop.models_path, kind)
    return latest if latest is not None and not is_baseline(latest) else None


def _snapshot(shop: Shop) -> tuple[list[Product], int]:
    with shop.store(create=False) as store:
        products, _, version = store.products_changed_since(0)
    return products, version


def shop_language(products: Sequence[Product]) -> str:
    """"zh" when most products say so (or have CJK titles), else "en"."""
    if not products:
        return "en"
    sample = products[:: max(1, len(products) // 500)]
    zh = sum(1 for p in sample if (p.language or "").startswith("zh") or
             any("\u4e00" <= ch <= "\u9fff" for ch in p.title))
    return "zh" if zh * 2 > len(sample) else "en"


def _stack_config(language: str, hybrid: bool) -> Any:
    from shoprank.search.stack import StackConfig

    encoder = ("e5" if language == "zh" else "biencoder") if hybrid else "none"
    # the lexical stack is the one the first answer waits for: no spelling index (the hybrid one has it)
    return StackConfig(language=language, encoder=encoder, doc_max_length=TEXT_LENGTH, spelling=hybrid)


def embed_catalogue(products: Sequence[Product], language: str, progress: Progress | None = None,
                    ray: Any = None) -> np.ndarray:
    """The base encoder's vectors of the products' texts, (n, dim), in chunks so progress can be shown; with
    ``ray`` (a :class:`~shoprank.cluster.RayConfig`, English shops) each chunk is embedded across its workers."""
    from shoprank.search.stack import load_encoder, product_text

    config = _stack_config(language, hybrid=True)
    texts = [product_text(p) for p in products]
    if ray is not None and config.encoder == "biencoder":
        from shoprank.cluster import cluster
        from shoprank.cluster.embedding import EncoderSpec, embed_on_ray

        with cluster(ray):
            return embed_on_ray(texts, EncoderSpec("docs", None, config.doc_max_length), ray, on_progress=progress)
    encoder = load_encoder(config)
    parts = []
    for start in range(0, len(texts), CHUNK):
        parts.append(encoder.encode_docs(texts[start : start + CHUNK]))
        if progress is not None:
            progress(min(start + CHUNK, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)


def publish_search(shop: Shop, vectors: np.ndarray | None = None,
                   snapshot: tuple[list[Product], int] | None = None) -> tuple[str | None, Any]:
    """Publish a baseline search bundle: lexical, or hybrid with ``vectors`` (rows = ``snapshot``'s products).

    Returns (version, the in-memory stack), or (None, None) when a trained bundle is serving."""
    from shoprank.search.stack import SearchStack, load_encoder

    if trained_version(shop, "search"):
        return None, None
    products, catalog_version = snapshot or _snapshot(shop)
    language = shop_language(products)
    config = _stack_config(language, vectors is not None)
    started = time.perf_counter()
    encoder = load_encoder(config)
    stack = SearchStack.build(products, encoder, config, vectors=vectors)
    params = {"stack": "baseline", "retrieval": "hybrid" if vectors is not None else "lexical",
              "encoder": config.encoder, "catalog_version": catalog_version, "products": len(products),
              "build_seconds": round(time.perf_counter() - started, 3)}
    if trained_version(shop, "search"):  # trained while we built: it wins
        return None, None
    with publish(shop.models_path, "search", params, version_prefix=PREFIX) as folder:
        stack.save(folder, include_encoder=False)
    version = latest_version(shop.models_path, "search")
    prune(shop, "search")  # a baseline is rebuilt from the store at any time: older ones go
    log.info("shop %s: baseline search %s published (%s, %d products)", shop.name, version, params["retrieval"],
             len(products))
    return version, stack


def publish_recommend(shop: Shop, vectors: np.ndarray | None = None, vector_ids: Sequence[str] | None = None,
                      *, encoder: str | None = None, neighbours: bool = True) -> str | None:
    """Publish a baseline recommend bundle from the shop's events so far.

    ``vectors`` (rows = ``vector_ids``) made by ``encoder`` (``default``: the base encoder's, shared with
    search; products they lack are encoded now); without them, keyword hashing. ``neighbours`` off skips the
    co-visitation and bought-together tables (a quick first bundle of a large log). Returns the version, or
    None when a trained bundle is serving."""
    from shoprank.recommend import artifacts
    from shoprank.recommend.pipeline import read_log

    if trained_version(shop, "recommend"):
        return None
    art = recommend_artifacts(read_log(shop), vectors, vector_ids, encoder=encoder, neighbours=neighbours)
    if trained_version(shop, "recommend"):
        return None
    version = artifacts.save(shop.models_path, art, version_prefix=PREFIX)
    prune(shop, "recommend")  # republished as events arrive (at most every 30 s): older ones go
    log.info("shop %s: baseline recommendations %s published (%d items, %d events, text %s)", shop.name, version,
             len(art.item_ids), art.params["log"]["events"], art.params["encoder"])
    return version


def recommend_artifacts(shop_log: Any, vectors: np.ndarray | None = None, vector_ids: Sequence[str] | None = None,
                        *, encoder: str | None = None, neighbours: bool = True) -> Any:
    """The baseline recommend artifacts of a :class:`~shoprank.recommend.pipeline.ShopLog` (not published)."""
    from shoprank.recommend import artifacts
    from shoprank.recommend.item2item import NeighbourTable, basket_pairs, covisitation
    from shoprank.recommend.pipeline import COVISIT_KEEP, COVISIT_WINDOW, popularity
    from shoprank.recommend.text import encode_items

    n = len(shop_log.catalogue)
    texts = shop_log.catalogue.texts
    if vectors is not None and vector_ids is not None and len(vectors):
        encoder = encoder or "default"
        row = {pid: i for i, pid in enumerate(vector_ids)}
        dim = vectors.shape[1]
        text_vectors = np.zeros((n, dim), np.float32)
        missing = [i for i, pid in enumerate(shop_log.catalogue.ids) if pid not in row]
        for i, pid in enumerate(shop_log.catalogue.ids):
            if pid in row:
                text_vectors[i] = vectors[row[pid]]
        if missing:
            text_vectors[missing] = encode_items([texts[i] for i in missing], encoder, max_length=TEXT_LENGTH)
    else:
        text_vectors = encode_items(list(texts), HASH_ENCODER)
        encoder = HASH_ENCODER
    text_vectors = np.vstack([np.zeros((1, text_vectors.shape[1]), np.float32), text_vectors])
    pop, trend, trend_until = popularity(shop_log, n, shop_log.seqs)
    flat = np.concatenate(shop_log.seqs.items) if len(shop_log.seqs) else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=n + 1).astype(np.float32)
    empty = NeighbourTable(np.zeros((n + 1, 1), np.int32), np.zeros((n + 1, 1), np.float32))
    build = neighbours and len(shop_log.seqs) > 0
    bought, basket_counts = basket_pairs(shop_log.events, shop_log.catalogue.index, n) if build else (empty, {})
    return artifacts.RecArtifacts(
        model=None, item_ids=list(shop_log.catalogue.ids), text_vectors=text_vectors, popularity=pop,
        trending=trend, counts=counts,
        covisit=covisitation(shop_log.seqs, n, window=COVISIT_WINDOW, keep=COVISIT_KEEP) if build else empty,
        bought=bought,
        params={"stack": "baseline", "encoder": encoder, "text_max_length": TEXT_LENGTH, "neighbours": build,
                "content_weight": 0.5, "covisit_weight": 1.0, "cold_slot_threshold": None,
                "log": shop_log.fingerprint, "trend_until": trend_until, "bought_together": basket_counts},
    )
