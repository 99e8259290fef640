"""The re-ranking stage, shared by search and recommendations: filters → rules → diversity → exploration.

:class:`Reranker` reorders and filters the ranker's list; it never adds an item. Pinned items are set
aside after the rules, the others are diversified and explored, and the pins go back in last, so a
pin always ends at its position.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shoprank.data.records import Product
from shoprank.learning.randomise import DEFAULT_DEPTH as RANDOMISE_DEPTH
from shoprank.learning.randomise import check_rate, swap_adjacent
from shoprank.rerank._common import check_unique
from shoprank.rerank.diversity import DEFAULT_DIVERSITY, diversify
from shoprank.rerank.explore import (
    DEFAULT_MAX_IMPRESSIONS,
    DEFAULT_PRIOR,
    Exposure,
    check_prior,
    check_share,
    explore,
)
from shoprank.rerank.rules import RuleSet, load_rules, place_pins
from shoprank.results import ScoredItem, SearchFilters

if TYPE_CHECKING:
    from shoprank.store.base import Store

Vectors = Mapping[str, np.ndarray] | Callable[[Sequence[str]], np.ndarray]
"""Item embeddings: a mapping id -> vector, or a function from a list of ids to an (n, dim) array."""

SETTING_KEY = "rerank"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RerankConfig:
    """How a shop re-ranks. Stored as JSON in the shop setting ``"rerank"``."""

    diversity: float = DEFAULT_DIVERSITY  # λ: 0 = off (order kept), 1 = variety only; see diversity.py
    category_cap: int | None = None  # most items of one category per page; None = ceil(page_size · (1 − λ))
    category_levels: int | None = None  # category path levels that name a category; None = the full path
    page_size: int = 10  # the page the cap and the exploration slots are about
    depth: int = 50  # only the top `depth` places are chosen by MMR; exploration draws from them
    explore_share: float = 0.0  # share of a page for new or rarely shown items; 0 = off, at most 0.3
    explore_prior: tuple[float, float] = DEFAULT_PRIOR  # Beta prior (clicks, misses) of a new item
    explore_max_impressions: float = DEFAULT_MAX_IMPRESSIONS  # fewer impressions than this = rarely shown
    explore_new_days: float = 30.0  # a product created this recently counts as new
    randomise: float = 0.0  # each neighbouring pair of the first 20 places swaps with this probability; 0 = off

    def __post_init__(self) -> None:
        object.__setattr__(self, "explore_prior", tuple(self.explore_prior))
        if not 0.0 <= self.diversity <= 1.0 or math.isnan(self.diversity):
            raise ValueError(f"diversity must lie between 0 (off) and 1, got {self.diversity}")
        if self.category_cap is not None and self.category_cap < 1:
            raise ValueError(f"category_cap must be at least 1 (or None to follow diversity), got {self.category_cap}")
        if self.category_levels is not None and self.category_levels < 1:
            raise ValueError(f"category_levels must be at least 1 (or None: full path), got {self.category_levels}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if self.depth < self.page_size:
            raise ValueError(f"depth ({self.depth}) must be at least page_size ({self.page_size})")
        check_share(self.explore_share)
        check_rate(self.randomise)
        check_prior(self.explore_prior)
        if self.explore_max_impressions < 0 or self.explore_new_days < 0:
            raise ValueError("explore_max_impressions and explore_new_days cannot be negative")

    def for_evaluation(self, explore: bool = False) -> RerankConfig:
        """The same settings with exploration and randomisation off, unless ``explore`` asks to keep them."""
        return self if explore else replace(self, explore_share=0.0, randomise=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, **asdict(self), "explore_prior": list(self.explore_prior)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RerankConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names - {"version"})
        if unknown:
            raise ValueError(f"unknown re-ranking setting {unknown[0]!r}; valid names: {', '.join(sorted(names))}")
        version = raw.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"re-ranking settings format {version!r} is not supported; this reads {FORMAT_VERSION}")
        return cls(**{k: v for k, v in raw.items() if k != "version"})


def load_config(store: Store) -> RerankConfig:
    """The shop's re-ranking settings (the defaults when none are stored)."""
    raw = store.get_setting(SETTING_KEY)
    return RerankConfig() if raw is None else RerankConfig.from_dict(raw)


def save_config(store: Store, config: RerankConfig) -> None:
    store.set_setting(SETTING_KEY, config.to_dict())


def _category_key(product: Product | None, levels: int | None) -> str:
    if product is None:
        return ""
    path = product.category_path
    return " > ".join(path if levels is None else path[:levels]).casefold()


def _matrix(ids: Sequence[str], vectors: Vectors) -> np.ndarray | None:
    """Rows aligned with ``ids``; a missing vector is a zero row (similar to nothing)."""
    if callable(vectors):
        matrix = np.asarray(vectors(list(ids)), dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"the vector function must return one row per id: ({len(ids)}, dim), got {matrix.shape}")
        return matrix
    found = [vectors.get(i) for i in ids]
    dims = {np.asarray(v).shape for v in found if v is not None}
    if not dims:
        return None
    if len(dims) > 1:
        raise ValueError(f"item vectors differ in shape: {sorted(dims)}")
    (shape,) = dims
    return np.stack([np.zeros(shape) if v is None else np.asarray(v, dtype=np.float64) for v in found])


class Reranker:
    """Filters and business rules, then diversity, then exploration and randomisation, then pins.

    ``exposure`` (item id -> (clicks, impressions)) feeds exploration; without it every item counts
    as never shown.
    """

    def __init__(
        self,
        config: RerankConfig | None = None,
        rules: RuleSet | None = None,
        exposure: Exposure | None = None,
    ) -> None:
        self.config = config or RerankConfig()
        self.rules = rules if rules is not None else RuleSet()
        self.exposure = exposure or {}

    @classmethod
    def from_store(
        cls, store: Store, *, diversity: float | None = None, exposure: Exposure | None = None
    ) -> Reranker:
        """The shop's stored settings and rules; ``diversity`` (``--diversity L``) overrides the shop's λ."""
        config = load_config(store)
        if diversity is not None:
            config = replace(config, diversity=diversity)
        return cls(config, load_rules(store), exposure)

    def rerank(
        self,
        items: Sequence[ScoredItem],
        products: Mapping[str, Product],
        vectors: Vectors | None = None,
        query: str | None = None,
        *,
        category: str | None = None,
        filters: SearchFilters | None = None,
        rng: np.random.Generator | int | None = None,
        now: float | None = None,
    ) -> list[ScoredItem]:
        """The items to show, best first, each with its reasons; a subset of ``items``, reordered.

        ``category`` is the category being browsed (``filters.category`` when not given); rules use it.
        ``rng`` seeds exploration; ``now`` (epoch seconds) decides which products are new.
        """
        check_unique(items)
        cfg = self.config
        category = category if category is not None else (filters.category if filters else None)
        # the one copy of the request's items: every step after the filter changes this list's items in place
        kept = self.rules.filter(items, products, query=query, category=category, filters=filters)
        adjusted = self.rules.adjust(kept, products, query=query, category=category, copy=False)
        pins = self.rules.pins(query, category)
        pinned = {pin.item_id for pin in pins}
        free = [item for item in adjusted if item.id not in pinned]  # pinned items skip diversity

        if cfg.diversity > 0 and free:
            ids = [item.id for item in free]
            matrix = _matrix(ids, vectors) if vectors is not None else None
            categories = [_category_key(products.get(i), cfg.category_levels) for i in ids]
            free = diversify(
                free, matrix, categories, cfg.diversity,
                category_cap=cfg.category_cap, page_size=cfg.page_size, top_k=cfg.depth, copy=False,
            )
        if cfg.explore_share > 0 and free:
            free = explore(
                free, self.exposure, share=cfg.explore_share, page_size=cfg.page_size, depth=cfg.depth,
                prior=cfg.explore_prior, eligible=self._eligible(products, now), rng=rng, copy=False,
            )
        if cfg.randomise > 0 and free:  # small swaps: the interventions that make position bias measurable
            free = swap_adjacent(free, cfg.randomise, np.random.default_rng(rng), RANDOMISE_DEPTH)
        order = free + [item for item in adjusted if item.id in pinned]
        return place_pins(order, pins, copy=False)

    def only_filters(self, query: str | None = None, category: str | None = None) -> bool:
        """True when re-ranking a request's list can only drop items (filters, stock, hide rules): no boost,
        bury or pin in force, no diversity, no exploration. Its answer is then ``rules.filter`` of the list,
        item by item, so a long list can be filtered without being re-ranked whole."""
        if self.config.diversity > 0 or self.config.explore_share > 0 or self.config.randomise > 0:
            return False
        return not any(rule.action in ("boost", "bury", "pin") for rule in self.rules.active(query, category))

    def _eligible(self, products: Mapping[str, Product], now: float | None) -> Callable[[str], bool]:
        """New (created within ``explore_new_days``) or rarely shown (under ``explore_max_impressions``)."""
        cfg = self.config
        cutoff = (time.time() if now is None else now) - cfg.explore_new_days * 86400.0

        def eligible(item_id: str) -> bool:
            if float(self.exposure.get(item_id, (0, 0))[1]) < cfg.explore_max_impressions:
                return True
            product = products.get(item_id)
            return product is not None and product.created_at is not None and product.created_at >= cutoff

        return eligible


def rerank(
    items: Sequence[ScoredItem],
    products: Mapping[str, Product],
    vectors: Vectors | None = None,
    query: str | None = None,
    config: RerankConfig | None = None,
    *,
    rules: RuleSet | None = None,
    exposure: Exposure | None = None,
    category: str | None = None,
    filters: SearchFilters | None = None,
    rng: np.random.Generator | int | None = None,
    now: float | None = None,
) -> list[ScoredItem]:
    """One-call form of :meth:`Reranker.rerank`."""
    return Reranker(config, rules, exposure).rerank(
        items, products, vectors, query, category=category, filters=filters, rng=rng, now=now
    )
