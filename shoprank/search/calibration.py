"""Choosing the dense threshold of a result set (:mod:`shoprank.search.matching`) on validation queries.

Criterion: the highest cosine at which the candidate pool (BM25 top ``lexical_k`` united with the dense top
``dense_k`` at or above it) still holds :data:`KEEP_RECALL` of the relevant validation products it holds
without a threshold. Only relevant products that the dense side alone found can be lost, so the threshold is
a quantile of their cosines. What it buys is reported beside it: the share of random-letter queries
(:func:`nonsense_queries`) that no product's vector reaches, and that match nothing at all.

``train search`` calibrates every bundle it trains (on its ``valid`` split, ``split_training``);
:func:`calibrate_bundle` does it for a bundle published before, as a new bundle version.
"""

from __future__ import annotations

import random
import shutil
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

KEEP_RECALL = 0.99
"""Share of the relevant validation products in the un-thresholded pool the chosen threshold keeps."""
MIN_EVIDENCE = 20
"""Relevant validation products found by the dense side alone needed to calibrate; with fewer (lexical search
finds nearly everything relevant), the encoder's default threshold stays."""
NONSENSE_QUERIES = 200


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` chose and why, recorded in the bundle's training summary."""

    threshold: float
    keep_recall: float
    queries: int  # validation queries with a relevant product in the un-thresholded pool
    pool_recall: float  # share of the relevant validation products in the pool without a threshold
    kept_recall: float  # ... with it
    nonsense_no_dense_match: float  # share of random-letter queries no product's vector reaches
    nonsense_no_match: float  # share of them with no lexical match either (an empty result set)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def nonsense_queries(n: int = NONSENSE_QUERIES, seed: int = 0) -> list[str]:
    """Random-letter queries of one to three words of 4-9 letters: nothing in a shop should match them."""
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
                     for _ in range(rng.randint(1, 3))) for _ in range(n)]


def calibrate(stack: Any, qset: Any, queries: Sequence[str], relevant_gain: float,
              keep_recall: float = KEEP_RECALL, nonsense: Sequence[str] | None = None) -> Calibration:
    """The dense threshold for ``stack`` from validation queries: the highest cosine at which the candidate
    pool (BM25 top ``lexical_k`` united with the dense top ``dense_k`` at or above the threshold) still holds
    ``keep_recall`` of the relevant products (gain >= ``relevant_gain``) that it holds without a threshold.
    Only relevant products found by the dense side alone can be lost, so the threshold is a quantile of
    their cosines. Raises ValueError when no validation query has a relevant product in the pool."""
    if not 0.0 < keep_recall <= 1.0:
        raise ValueError(f"keep_recall must lie in (0, 1], got {keep_recall}")
    if stack.lexical_only:
        raise ValueError("a lexical-only stack has no dense side to calibrate")
    queries = [q for q in queries if any(g >= relevant_gain for g in qset.gains[q].values())]
    vectors = stack.encode_queries(list(queries)) if queries else np.zeros((0, 1), np.float32)
    found = 0  # relevant products in the un-thresholded pool, over all queries
    dense_only: list[float] = []  # cosines of those only the dense side found
    used = relevant_all = 0
    for q, qvec in zip(queries, vectors, strict=True):
        relevant = stack.catalog.rows([p for p, g in qset.gains[q].items() if g >= relevant_gain])
        relevant = relevant[relevant >= 0]
        if not len(relevant):
            continue
        relevant_all += len(relevant)
        cand = stack.candidates(stack.tokens(q), qvec)
        pool = set(cand.rows.tolist())
        lexical = set(cand.rows[cand.bm25 > 0].tolist())
        hits = [int(r) for r in relevant if int(r) in pool]
        if not hits:
            continue
        used += 1
        found += len(hits)
        dense_only += [float(stack.dense.cosine(qvec, np.asarray([r]))[0]) for r in hits if r not in lexical]
    if found == 0:
        raise ValueError("no validation query has a relevant product in the candidate pool: nothing to calibrate on")
    if len(dense_only) < MIN_EVIDENCE:
        raise ValueError(f"only {len(dense_only)} relevant validation products were found by the dense side "
                         f"alone (at least {MIN_EVIDENCE} are needed to calibrate on)")
    may_lose = int(np.floor(found * (1.0 - keep_recall) + 1e-9))  # relevant products the threshold may drop
    cosines = np.sort(np.asarray(dense_only, np.float64))
    threshold = float(cosines[may_lose]) if may_lose < len(cosines) else 1.0
    threshold = float(np.floor(threshold * 1000) / 1000)  # three decimals, rounded down: keeps at least as many
    lost = int((cosines < threshold).sum())
    words = list(nonsense if nonsense is not None else nonsense_queries())
    no_dense = no_match = 0
    live = stack.dense.vectors[stack.catalog.alive[: len(stack.dense.vectors)]]
    for q, qvec in zip(words, stack.encode_queries(words) if words else [], strict=True):
        best = float(np.max(live @ qvec)) if len(live) else -1.0
        if best < threshold:
            no_dense += 1
            no_match += int(not (stack.bm25.score(stack.tokens(q)) > 0).any())
    n = max(1, len(words))
    return Calibration(threshold, keep_recall, used, found / relevant_all, (found - lost) / relevant_all,
                       no_dense / n, no_match / n)


def calibrate_training(stack: Any, valid: Any, relevant_gain: float) -> dict[str, Any]:
    """Set ``stack.config.dense_threshold`` from the validation queries (unless the configuration set one);
    returns what was chosen and why, for the training summary."""
    from shoprank.search.matching import dense_threshold

    if stack.config.dense_threshold is not None:
        return {"threshold": stack.config.dense_threshold, "chosen_by": "configuration"}
    if stack.lexical_only:
        return {"threshold": None, "chosen_by": "lexical-only stack: lexical matches only"}
    try:
        chosen = calibrate(stack, valid, valid.queries(), relevant_gain)
    except ValueError as exc:
        return {"threshold": dense_threshold(stack.config), "chosen_by": f"encoder default ({exc})"}
    stack.config = replace(stack.config, dense_threshold=chosen.threshold)
    return {**chosen.to_dict(), "chosen_by": "validation queries"}


def calibrate_bundle(shop: Any, keep_recall: float = KEEP_RECALL, progress: bool = False) -> tuple[str, dict]:
    """Calibrate the threshold of ``shop``'s latest search bundle on the validation split it was trained with
    (its recorded held-out split, then ``split_training`` of its profile) and publish the bundle again with it,
    as a new version (bundles are immutable). Returns (new version, calibration)."""
    import json

    from shoprank.bundles import BundleError, publish
    from shoprank.search.run_eval import load_held_out, relevant_gain
    from shoprank.search.train import profile_config, split_training

    bundle, data, stack = load_held_out(shop, load_cross=False)
    params = dict(bundle.params)
    config = profile_config(params.get("profile", "full"), stack.config.language)
    valid = data.query_set(split_training(data, config).valid)
    if stack.lexical_only:
        raise BundleError(f"search bundle {bundle.version} is lexical only: there is no dense threshold to set")
    chosen = calibrate(stack, valid, valid.queries(), relevant_gain(data), keep_recall)
    meta = json.loads((bundle.path / "stack.json").read_text())
    meta["config"]["dense_threshold"] = chosen.threshold
    summary = dict(params.get("summary", {}))
    summary["matching"] = {**chosen.to_dict(), "chosen_by": "validation queries",
                           "calibrated_from": bundle.version}
    params["summary"] = summary
    with publish(shop.models_path, "search", params) as folder:
        for path in sorted(bundle.path.rglob("*")):
            if path.is_file() and path.name != "manifest.json":
                target = folder / path.relative_to(bundle.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        (folder / "stack.json").write_text(json.dumps(meta))
    from shoprank.bundles import latest_version

    return str(latest_version(shop.models_path, "search")), summary["matching"]
