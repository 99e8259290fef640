"""The "recommend" bundle: plain files, no pickle.

    model.safetensors    SASRec weights
    text_vectors.npy     (n_items + 1, dim) item text vectors (row 0 = padding)
    items.json           item ids in index order (index = position + 1)
    popularity.npy       (n_items + 1,) weighted event counts of the training log
    trending.npy         (n_items + 1,) the same over the log's last ``trend_days`` days
    counts.npy           (n_items + 1,) occurrences in the training view (how cold each item is)
    covisit_idx.npy / covisit_score.npy     co-visitation neighbours
    bought_idx.npy / bought_score.npy / bought_support.npy     bought-together partners, confidence, baskets
    categories.npy       (n_items + 1,) category code of each item (-1: none); the names in params ``categories``
    prices.npy           (n_items + 1,) price of each item (NaN: none)
    ranker.lgb.txt / ranker.json            the ranking stage's LambdaMART (LightGBM text format, feature names)
manifest params: ``{"format": 2, "config": SASRecConfig, "encoder": ..., "profile": ..., "training": {...},
"ranking_stage": StageConfig, "ranker": {...}}``

A baseline bundle (``params["stack"] == "baseline"``, :mod:`shoprank.baseline`) has no ``model.safetensors``,
no ``config`` and no ranker: it serves trending items, item-to-item neighbours and text similarity only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.bundles import Bundle, BundleError, open_bundle, publish
from shoprank.recommend.item2item import NeighbourTable
from shoprank.recommend.sasrec import SASRec, SASRecConfig

KIND = "recommend"
FORMAT = 2  # 2: the ranking stage (categories, prices, ranker)


@dataclass
class RecArtifacts:
    model: SASRec | None  # None: a baseline bundle (no sequence model)
    item_ids: list[str]
    text_vectors: np.ndarray
    popularity: np.ndarray
    trending: np.ndarray
    counts: np.ndarray  # (n_items + 1,) occurrences of each item in the training view
    covisit: NeighbourTable
    bought: NeighbourTable
    params: dict[str, Any]
    categories: np.ndarray | None = None  # (n_items + 1,) int32 category codes, -1: none
    prices: np.ndarray | None = None  # (n_items + 1,) float32, NaN: none
    ranker: Any = None  # the ranking stage's FusionRanker (None: not fitted yet)
    version: str = ""

    def __post_init__(self) -> None:
        n = len(self.counts)
        if self.categories is None:
            self.categories = np.full(n, -1, dtype=np.int32)
        if self.prices is None:
            self.prices = np.full(n, np.nan, dtype=np.float32)


def save(models_root: str | Path, art: RecArtifacts, *, version_prefix: str = "") -> str:
    """Publish ``art`` as a new "recommend" bundle; returns its version."""
    params = {**art.params, "format": FORMAT}
    if art.model is not None:
        params["config"] = art.model.cfg.to_dict()
    with publish(models_root, KIND, params, version_prefix=version_prefix) as folder:
        if art.model is not None:
            from safetensors.torch import save_file

            state = {k: v.detach().contiguous() for k, v in art.model.state_dict().items()}
            save_file(state, str(folder / "model.safetensors"))
        np.save(folder / "text_vectors.npy", art.text_vectors.astype(np.float32), allow_pickle=False)
        (folder / "items.json").write_text(json.dumps(art.item_ids, ensure_ascii=False))
        for name, array in (("popularity", art.popularity), ("trending", art.trending), ("counts", art.counts),
                            ("covisit_idx", art.covisit.idx), ("covisit_score", art.covisit.score),
                            ("bought_idx", art.bought.idx), ("bought_score", art.bought.score),
                            ("categories", art.categories), ("prices", art.prices)):
            np.save(folder / f"{name}.npy", array, allow_pickle=False)
        if art.bought.support is not None:
            np.save(folder / "bought_support.npy", art.bought.support, allow_pickle=False)
        if art.ranker is not None:
            art.ranker.save(folder, "ranker")
    bundle = open_bundle(models_root, KIND, verify=False)
    return bundle.version


def is_baseline(params: dict[str, Any]) -> bool:
    return params.get("stack") == "baseline"


def load(models_root: str | Path, version: str | None = None, *, verify: bool = True,
         upgrade: bool = False) -> RecArtifacts:
    """The latest (or ``version``) "recommend" bundle; raises BundleError when there is none or it is bad.

    ``upgrade``: also read a format-1 bundle (no ranking stage) for its model and tables, to fit the stage anew."""
    import torch
    from safetensors.torch import load_file

    bundle: Bundle = open_bundle(models_root, KIND, version, verify=verify)
    params = bundle.params
    if params.get("format") != FORMAT and not (upgrade and params.get("format") == 1):
        raise BundleError(f"bundle {bundle.path}: recommend format {params.get('format')!r}, expected {FORMAT}: "
                          "train the shop again ('shoprank train recommend --shop SHOP')")
    path = bundle.path

    def arr(name: str) -> np.ndarray:
        return np.load(path / f"{name}.npy", allow_pickle=False)

    text_vectors = arr("text_vectors")
    model = None
    if not is_baseline(params):
        model = SASRec(SASRecConfig(**params["config"]))
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        model.items.text_vectors = torch.from_numpy(text_vectors)
        model.eval()
    ranker = None
    if (path / "ranker.json").exists():
        from shoprank.ranking.fusion import FusionRanker

        ranker = FusionRanker.load(path, "ranker")
    return RecArtifacts(
        model=model,
        item_ids=json.loads((path / "items.json").read_text()),
        text_vectors=text_vectors,
        popularity=arr("popularity"),
        trending=arr("trending"),
        counts=arr("counts"),
        covisit=NeighbourTable(arr("covisit_idx"), arr("covisit_score")),
        bought=NeighbourTable(arr("bought_idx"), arr("bought_score"),
                              arr("bought_support") if (path / "bought_support.npy").is_file() else None),
        params=params,
        categories=arr("categories") if (path / "categories.npy").exists() else None,
        prices=arr("prices") if (path / "prices.npy").exists() else None,
        ranker=ranker,
        version=bundle.version,
    )
