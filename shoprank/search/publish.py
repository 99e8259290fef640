"""Training a shop's search models and publishing them as a bundle: what ``shoprank train search`` runs (the
command parses its options into a :class:`SearchTraining` and prints the :class:`PublishedSearch`), what the
retraining loop trains its candidates with, and what the benches call.

``shoprank train search --shop S --profile quick --no-cross-encoder`` is::

    train_and_publish(Shop("S"), SearchTraining(profile="quick", cross_encoder=False))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shoprank.search.data import TEST_SHARE
from shoprank.shops import Shop
from shoprank.training.profiles import PROFILE_NAMES

log = logging.getLogger("shoprank.search")

LABELS = ("auto", "judgments", "behaviour", "both")
DOC_TOWERS = ("base", "distilled", "tuned")  # what embeds the products (SearchTrainConfig.doc_tower)
CORRECTIONS = ("harvest", "em", "none")
FREEZE = ("none", "lower", "all")

Report = Callable[[str], None]


class SearchDataError(ValueError):
    """The shop has nothing search can learn from (no judgments, no behaviour log): the message says what to add."""


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"SearchTraining.{name} must be one of {', '.join(valid)}, got {value!r}")


@dataclass(frozen=True)
class SearchTraining:
    """What to train: a profile (:func:`shoprank.search.train.profile_config`) and overrides of its settings.

    An override left at None keeps the profile's value."""

    profile: str = "full"
    """demo: quick with 16-token product texts; quick: a sample of queries, one epoch; full: everything."""
    holdout: float = TEST_SHARE
    """Share of queries held out for ``evaluate search`` (0: train on all)."""
    tune: int = 0
    """Optuna trials for LambdaMART's hyper-parameters on the validation queries."""
    cross_encoder: bool = True
    """False: no cross-encoder (the online path does not use it; saves most of the CPU time)."""
    fine_tune: bool = True
    """False: no query-encoder fine-tuning (LambdaMART over the untuned encoder's scores and the other features)."""
    fusion_queries: int | None = None
    """Training queries sampled for the LambdaMART rankers (0: every fusion query)."""
    labels: str = "auto"
    """What to learn from: judgments, behaviour (position-bias corrected), both, or auto (whatever the shop has)."""
    correction: str = "harvest"
    """Position-bias propensities: intervention harvesting, an EM-fitted position-based model, or none."""
    examined: float | None = None
    """A shown, unclicked product is a labelled negative where its place's propensity is at least this (None:
    :class:`~shoprank.learning.BehaviourConfig`'s default)."""
    cross_pairs: int | None = None
    """Labelled (query, product) pairs sampled for the cross-encoder (0: all)."""
    cross_epochs: int | None = None
    cross_lr: float | None = None
    """The cross-encoder's peak learning rate."""
    cross_freeze: str | None = None
    """none: fine-tune every layer; lower: freeze the lower half; all: the head only."""
    cross_eval_every: int | None = None
    """Validate (NDCG@10) every so many steps for early stopping (0: once an epoch)."""
    threads: int = 2
    """CPU threads for LightGBM (the caller sets PyTorch's)."""
    doc_tower: str = "base"
    """base: the base model embeds the products; distilled: a shallower tower distilled from it on the shop's
    product texts embeds them (several times faster: large catalogues; :mod:`shoprank.encoders.distil`); tuned:
    one tower fine-tuned for queries and products, the catalogue embedded again with it."""
    distil_layers: tuple[int, ...] | None = None
    """The base model's layers the distilled tower keeps (None: :class:`~shoprank.encoders.distil.DistilConfig`'s)."""
    tower_distill: float | None = None
    """With ``doc_tower="tuned"``: weight of the margin-MSE term against the cross-encoder's scores (None: the
    profile's)."""

    def __post_init__(self) -> None:
        _choice("profile", self.profile, PROFILE_NAMES)
        _choice("labels", self.labels, LABELS)
        _choice("correction", self.correction, CORRECTIONS)
        _choice("doc_tower", self.doc_tower, DOC_TOWERS)
        if self.cross_freeze is not None:
            _choice("cross_freeze", self.cross_freeze, FREEZE)
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"SearchTraining.holdout must lie in [0, 1) (0 trains on every query), got {self.holdout}")
        if self.tower_distill is not None and (self.tower_distill < 0 or self.doc_tower != "tuned"):
            raise ValueError("SearchTraining.tower_distill (--tower-distill) must be 0 or more, with --doc-tower tuned")
        if self.tune < 0 or self.threads < 1:
            raise ValueError("SearchTraining.tune must be 0 or more and threads at least 1")
        if self.fusion_queries is not None and self.fusion_queries < 0:
            raise ValueError("SearchTraining.fusion_queries (--fusion-queries) must be 0 (all) or more")
        if self.cross_pairs is not None and self.cross_pairs < 0:
            raise ValueError("SearchTraining.cross_pairs (--cross-pairs) must be 0 (all) or more")
        if (self.cross_epochs is not None and self.cross_epochs < 1) or (
                self.cross_lr is not None and self.cross_lr <= 0):
            raise ValueError("SearchTraining.cross_epochs (--cross-epochs) must be at least 1 and cross_lr "
                             "(--cross-lr) positive")
        if self.cross_eval_every is not None and self.cross_eval_every < 0:
            raise ValueError("SearchTraining.cross_eval_every (--cross-eval-every) must be 0 (once an epoch) or more")
        if self.examined is not None and not 0.0 <= self.examined <= 1.0:
            raise ValueError(f"SearchTraining.examined must lie in [0, 1], got {self.examined}")

    def behaviour(self) -> Any:
        """How labels are made from the behaviour log (:class:`~shoprank.learning.BehaviourConfig`)."""
        from shoprank.learning import BehaviourConfig

        return BehaviourConfig(correction=self.correction,
                               **({} if self.examined is None else {"examined": self.examined}))

    def config(self, language: str) -> Any:
        """The profile's :class:`~shoprank.search.train.SearchTrainConfig` for ``language`` with the overrides."""
        from shoprank.search.train import profile_config

        config = profile_config(self.profile, language)
        config.fusion.threads = self.threads
        if self.fusion_queries is not None:
            config.max_fusion_queries = self.fusion_queries or None
        if not self.fine_tune:
            config.biencoder = None
        config.doc_tower = self.doc_tower
        if self.doc_tower == "distilled" and config.stack.encoder != "biencoder":
            raise SearchDataError(f"--doc-tower distilled is made from the MiniLM bi-encoder; this shop's products "
                                  f"are embedded by {config.stack.encoder!r} (language {language}), which cannot be "
                                  "distilled")
        if self.doc_tower == "tuned" and (config.stack.encoder != "biencoder" or config.biencoder is None):
            raise SearchDataError("--doc-tower tuned fine-tunes the MiniLM bi-encoder for queries and products: "
                                  + ("it needs fine-tuning (drop --no-fine-tuning)" if config.biencoder is None
                                     and config.stack.encoder == "biencoder" else
                                     f"this shop's products are embedded by {config.stack.encoder!r} (language "
                                     f"{language}), which is frozen"))
        if self.distil_layers is not None:
            config.distil = replace(config.distil, layers=tuple(self.distil_layers))
        if self.tower_distill is not None:
            config.tower_distill = self.tower_distill
        if not self.cross_encoder:
            config.cross = None
        elif config.cross is not None:
            if self.cross_pairs is not None:
                config.max_cross_pairs = self.cross_pairs or None
            changes = {name: value for name, value in (("epochs", self.cross_epochs), ("learning_rate", self.cross_lr),
                                                       ("freeze", self.cross_freeze)) if value is not None}
            config.cross = replace(config.cross, **changes)
            if self.cross_eval_every is not None:
                config.cross_eval_every = self.cross_eval_every
        return config


@dataclass(frozen=True)
class TrainedSearch:
    """A trained stack (not yet published), the bundle parameters that describe it, and the data's labels."""

    stack: Any
    params: dict[str, Any]
    labels: str
    """Where the training labels came from, in words."""
    seconds: float


@dataclass(frozen=True)
class PublishedSearch:
    version: str
    summary: dict[str, Any]
    """:func:`shoprank.search.train.train_search`'s summary (queries, encoders, fusion, held-out figures, timings)."""
    query_tower: str
    """What the server embeds queries with: the ONNX tower's description, or why there is none."""
    labels: str
    seconds: float


def train_stack(shop: Shop, training: SearchTraining, *, until: float | None = None, progress: bool = True,
                held_out: bool = False, log_dir: Path | None = None, announce: Report | None = None,
                report: Report = print, ray: Any = None) -> TrainedSearch:
    """Train ``shop``'s search stack from its store (not published).

    ``ray``: a :class:`~shoprank.cluster.RayConfig`: embed the catalogue and train the encoders on its workers.
    ``until``: learn from behaviour before this time only (the retraining loop's candidates); ``held_out``: score
    the held-out queries into the summary; ``announce``: told what is about to be trained, once the data is read.
    Raises :class:`SearchDataError` when the shop has nothing to learn from."""
    from shoprank.search.data import SPLIT_SEED, detect_language, load_search_data
    from shoprank.search.train import train_search

    started = time.perf_counter()
    with shop.store(create=False) as store:
        try:
            data = load_search_data(store, test_share=training.holdout, labels=training.labels,
                                    behaviour=training.behaviour(), until=until)
        except ValueError as exc:
            raise SearchDataError(str(exc)) from None
        catalog_version = store.catalog_version()
    language = detect_language(data.products)
    config = training.config(language)
    labels = label_words(data)
    if announce is not None:
        announce(f"training search for shop '{shop.name}' with the {training.profile!r} profile "
                 f"({len(data.products):,} products, language {language}, {training.holdout:.0%} of queries held "
                 f"out{', no cross-encoder' if config.cross is None else ''})")
        announce(f"  labels from {labels}")
    stack, summary = train_search(data, config, progress=progress, report=report, tune=training.tune,
                                  cache_dir=shop.path / "cache", log_dir=log_dir, held_out=held_out, ray=ray)
    params = {"profile": training.profile, "holdout": training.holdout, "split_seed": SPLIT_SEED,
              "labels": data.labels, "catalog_version": catalog_version, "language": language,
              "doc_tower": config.doc_tower, "summary": summary}
    if config.doc_tower == "distilled":
        params["distil_layers"] = list(config.distil.layers)
    if config.doc_tower == "tuned":
        params["tower_distill"] = config.tower_distill
    return TrainedSearch(stack, params, labels, time.perf_counter() - started)


def publish_stack(shop: Shop, stack: Any, params: dict[str, Any]) -> tuple[str, str]:
    """Publish ``stack`` with the int8 ONNX query tower the server runs; returns the version and the tower's
    description (or why there is none: the server then embeds queries with PyTorch)."""
    from shoprank.bundles import latest_version, publish

    with publish(shop.models_path, "search", params) as folder:
        stack.save(folder)
        try:
            query_tower = stack.export_query_tower(folder)
        except (ImportError, ValueError) as exc:
            log.warning("no ONNX query tower in the bundle (%s)", exc)
            query_tower = f"none ({exc}); the server embeds queries with PyTorch"
    version = latest_version(shop.models_path, "search")
    assert version is not None
    return version, query_tower


def train_and_publish(shop: Shop, training: SearchTraining, *, progress: bool = True,
                      announce: Report | None = None, ray: Any = None) -> PublishedSearch:
    """``shoprank train search``: train on the shop's store, publish, and say what was published.

    TensorBoard event files go to ``SHOP/logs/search-TIME``; the held-out queries (``training.holdout``) are
    scored into the summary."""
    started = time.perf_counter()
    trained = train_stack(shop, training, progress=progress, held_out=training.holdout > 0,
                          log_dir=shop.path / "logs" / f"search-{time.strftime('%Y%m%d-%H%M%S')}", announce=announce,
                          ray=ray)
    version, query_tower = publish_stack(shop, trained.stack, trained.params)
    return PublishedSearch(version, trained.params["summary"], query_tower, trained.labels,
                           time.perf_counter() - started)


def label_words(data: Any) -> str:
    """What the training labels came from, in words."""
    if data.labels == "judgments":
        return f"judgments ({len({j.query for j in data.train}):,} training queries)"
    info = data.behaviour
    click_log, theta = info["log"], info["propensities"]
    fallback = theta.get("info", {}).get("fallback")
    bias = f"not corrected ({fallback})" if fallback else (
        "not corrected (--correction none)" if theta["method"] == "none" else f"corrected ({theta['method']})")
    words = (f"the behaviour log ({click_log['lists']:,} served lists, {click_log['clicks']:,} clicks; "
             f"{info['labels']['queries']:,} training queries labelled from it; position bias {bias})")
    return words if data.labels == "behaviour" else f"judgments and {words}"
