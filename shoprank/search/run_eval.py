"""The evaluations behind `shoprank evaluate search` and the search-quality bench."""

from __future__ import annotations

import random
from typing import Any

from shoprank.bundles import BundleError, open_bundle
from shoprank.search.data import SPLIT_SEED, load_search_data
from shoprank.search.evaluate import ProtocolResult, UntunedVectors, full_catalogue, judged_reranking
from shoprank.search.stack import SearchStack, base_document_tower

Results = list[tuple[str, ProtocolResult]]


def _sample(queries: list[str], limit: int | None) -> list[str]:
    if limit is None or len(queries) <= limit:
        return queries
    return sorted(random.Random(0).sample(queries, limit), key=queries.index)


def relevant_gain(data: Any) -> float:
    """Recall counts products graded at least lowest + 0.75 * range (2.5 on a 1-3 scale)."""
    return 0.75 * data.top_gain


def load_held_out(shop: Any, load_cross: bool = True) -> tuple[Any, Any, SearchStack]:
    """The latest search bundle, the shop's data split as that bundle recorded it, and its stack;
    BundleError when the bundle held nothing out (trained with --holdout 0)."""
    bundle = open_bundle(shop.models_path, "search")
    params = bundle.params
    if not params.get("holdout"):
        raise BundleError(f"search bundle {bundle.version} was trained on every query (--holdout 0): "
                          "nothing is left to evaluate on; train with --holdout 0.2")
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=params["holdout"], seed=params.get("split_seed", SPLIT_SEED))
    return bundle, data, SearchStack.load(bundle.path, data.products, load_cross=load_cross)


def evaluate_bundle(shop: Any, full: bool = True, progress: bool = True, max_queries: int | None = None,
                    use_cross: bool = True) -> Results:
    """The latest search bundle on the queries it held out (the split it recorded)."""
    _, data, stack = load_held_out(shop, use_cross)
    test = data.query_set(data.test)
    untuned = UntunedVectors(stack, shop.path / "cache", progress)
    results: Results = []
    queries = _sample(test.evaluable(), max_queries)
    results.append((shop.name, judged_reranking(stack, test, queries, untuned, progress)))
    if full:
        queries = _sample([q for q in test.queries() if max(test.gains[q].values()) > 0], max_queries)
        results.append((shop.name, full_catalogue(stack, test, queries, untuned, relevant_gain(data),
                                                  use_cross=use_cross, progress=progress, served=served_search(shop))))
    return results


def served_search(shop: Any) -> Any:
    """``(query, top) -> ids`` as the shop serves them: its cascade, loaded as the server loads it (the bundle's
    query tower, the shop's rules and re-ranking settings), exploration off."""
    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade

    cascade = load_cascade(shop, ("search",))
    page_size = cascade.reranking.reranker.config.page_size

    def served(query: str, top: int) -> list[str]:
        return cascade.run_one(Request("search", query, per_page=page_size, limit=top)).ids

    return served


def evaluate_folds(shop: Any, folds: int, profile: str = "quick", progress: bool = True, tune: int = 0,
                   threads: int = 2, language: str | None = None, cross: bool = True, fine_tune: bool = True
                   ) -> Results:
    """k-fold by query: a stack trained per fold (never published), each query tested once."""
    from shoprank.search.data import detect_language
    from shoprank.search.train import profile_config, train_search

    combined = ProtocolResult("judged re-ranking")
    untuned_cache = shop.path / "cache"
    trained: set[str] = set()
    for fold in range(folds):
        with shop.store(create=False) as store:
            data = load_search_data(store, seed=SPLIT_SEED, test_fold=(fold, folds))
        config = profile_config(profile, language or detect_language(data.products))
        config.fusion.threads = threads
        if not cross:
            config.cross = None
        if not fine_tune:
            config.biencoder = None
        trained |= {name for name, part in (("query encoder", config.biencoder), ("cross-encoder", config.cross))
                    if part is not None}
        print(f"fold {fold + 1}/{folds}: {len({j.query for j in data.train})} training queries, "
              f"{len({j.query for j in data.test})} test queries")
        stack, _ = train_search(data, config, progress=progress, report=lambda s: None, tune=tune,
                                cache_dir=untuned_cache)
        test = data.query_set(data.test)
        untuned = UntunedVectors(stack, untuned_cache, False)
        combined.merge(judged_reranking(stack, test, test.evaluable(), untuned, False))
        print(f"  running means: {combined.means()}")
    combined.protocol = f"judged re-ranking, {folds} folds by query" + (
        f" ({' + '.join(sorted(trained))} trained per fold)" if trained else " (fusion trained per fold)")
    return [(shop.name, combined)]


def evaluate_transfer(shop: Any, source: Any, progress: bool = True, max_queries: int | None = None) -> Results:
    """``shop``'s judged queries ranked with ``source``'s trained encoders and rankers (no training on ``shop``)."""
    bundle = open_bundle(source.models_path, "search")
    src = SearchStack.load(bundle.path, None, load_cross=True)
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=0.0)
    vectors = None
    if src.config.encoder in ("dual", "biencoder") and base_document_tower(src.encoder):  # cached base vectors
        from shoprank.search.vectors import base_vectors

        vectors = base_vectors(data.products, src.encoder, src.config.doc_max_length, shop.path / "cache", progress)
    stack = SearchStack.build(data.products, src.encoder, src.config, progress=progress, vectors=vectors)
    stack.cross, stack.fusion = src.cross, src.fusion
    everything = data.query_set(data.train)
    queries = _sample(everything.evaluable(), max_queries)
    result = judged_reranking(stack, everything, queries, UntunedVectors(stack, shop.path / "cache", progress),
                              progress)
    result.protocol = f"judged re-ranking, transfer: models from '{source.name}' only"
    return [(shop.name, result)]
