"""How many published bundles a shop keeps: older baseline bundles go as new ones publish, older trained ones when
asked (``shoprank models prune``). Never removed: the bundle ``LATEST`` names and any version a stored experiment
names."""

from __future__ import annotations

import json
import logging
import shutil

from shoprank.bundles import MANIFEST, latest_version, list_versions
from shoprank.shops import Shop

log = logging.getLogger("shoprank.retention")

PREFIX = "baseline-"  # what a baseline bundle's version starts with (shoprank.baseline)
KEEP_BASELINES = 3  # baseline bundles of a kind kept: the newest, and two for replicas still loading them
KEEP_TRAINED = 5  # trained bundles of a kind ``shoprank models prune`` keeps by default


def is_baseline(version: str | None) -> bool:
    return bool(version) and str(version).startswith(PREFIX)


def created(shop: Shop, kind: str, version: str) -> float:
    """When a bundle was published, from its manifest (0 where it cannot be read)."""
    try:
        return float(json.loads((shop.models_path / kind / version / MANIFEST).read_text())["created"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def versions_by_age(shop: Shop, kind: str) -> list[str]:
    """The shop's bundles of ``kind``, oldest first by publication (names order by the second only)."""
    return sorted(list_versions(shop.models_path, kind), key=lambda v: (created(shop, kind, v), v))


def protected(shop: Shop, kind: str) -> set[str]:
    """The versions never removed: the one ``LATEST`` names and those a stored experiment names."""
    from shoprank.abtest.book import load_experiments

    with shop.store(create=False) as store:
        pinned = {variant.model(kind) for experiment in load_experiments(store).values()
                  for variant in experiment.variants}
    return pinned | {latest_version(shop.models_path, kind)}


def surplus(shop: Shop, kind: str, *, keep_baselines: int = KEEP_BASELINES,
            keep_trained: int | None = None) -> list[str]:
    """The bundles of ``kind`` beyond the newest ``keep_baselines`` baseline and ``keep_trained`` trained ones
    (None: trained ones are all kept), less the :func:`protected` ones: what :func:`prune` removes."""
    if keep_baselines < 1 or (keep_trained is not None and keep_trained < 1):
        raise ValueError("keep at least 1 bundle of each sort")
    everything = versions_by_age(shop, kind)
    baselines = [v for v in everything if is_baseline(v)]
    trained = [v for v in everything if not is_baseline(v)]
    doomed = baselines[:-keep_baselines] + ([] if keep_trained is None else trained[:-keep_trained])
    if not doomed:
        return []
    keep = protected(shop, kind)
    return [v for v in doomed if v not in keep]


def remove(shop: Shop, kind: str, versions: list[str]) -> None:
    for version in versions:
        shutil.rmtree(shop.models_path / kind / version, ignore_errors=True)
    if versions:
        log.info("shop %s: removed %d older %s bundles", shop.name, len(versions), kind)


def prune(shop: Shop, kind: str, *, keep_baselines: int = KEEP_BASELINES,
          keep_trained: int | None = None) -> list[str]:
    """Remove :func:`surplus` bundles; returns their versions."""
    doomed = surplus(shop, kind, keep_baselines=keep_baselines, keep_trained=keep_trained)
    remove(shop, kind, doomed)
    return doomed


def baseline_versions(shop: Shop, kind: str) -> list[str]:
    """The shop's baseline bundles of ``kind``, oldest first by publication."""
    return [v for v in versions_by_age(shop, kind) if is_baseline(v)]
