"""Business rules per shop: hide out-of-stock items, shop-wide filters, and pin / boost / bury / hide rules.

A shop's rules are one :class:`RuleSet`, kept as JSON in the store setting ``"rules"``
(:func:`load_rules`, :func:`save_rules`). A rule says *when* it applies (a query and/or a category
being browsed; neither means always) and *what* it acts on (product ids, or every product of a brand
and/or category). Rules only reorder and filter the items they are given: a pinned product that is
not among the candidates is not added.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shoprank.data.records import Product
from shoprank.rerank._common import add_reason, check_unique, fresh
from shoprank.results import ScoredItem, SearchFilters

if TYPE_CHECKING:
    from shoprank.store.base import Store

ACTIONS = ("pin", "boost", "bury", "hide")
MATCHES = ("exact", "contains")
SETTING_KEY = "rules"
FORMAT_VERSION = 1
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


class RuleError(ValueError):
    """A rule or rule set is malformed. ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str, rule_id: int | None = None) -> None:
        self.field = field_name
        self.rule_id = rule_id
        where = f"rule {rule_id}: " if rule_id is not None else ""
        super().__init__(f"{where}field '{field_name}': {message}")


def normalise_query(text: str) -> str:
    """Compatibility-normalised, case-folded, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def _query_matches(wanted: str, query: str, match: str) -> bool:
    if match == "exact":
        return wanted == query
    if _CJK.search(wanted):  # no spaces between CJK words: plain substring
        return wanted in query
    return f" {wanted} " in f" {query} "  # whole words, in order


def _levels(category: str) -> list[str]:
    return [part.strip().casefold() for part in category.split(">") if part.strip()]


def _in_category(wanted: str, category: str) -> bool:
    """``wanted`` names ``category`` itself or any level of its path (as :class:`SearchFilters` does)."""
    wanted = wanted.strip().casefold()
    return wanted == category.strip().casefold() or wanted in _levels(category)


@dataclass(frozen=True)
class Rule:
    """One business rule.

    When: ``query`` (normalised; ``match`` is ``"exact"`` or ``"contains"``, whole words in order) and
    ``category`` (the category being browsed or filtered on, any level of its path). Both must hold
    when both are given; neither given means always.

    What: the ids in ``products``, plus every product whose ``brand`` and ``target_category`` (those
    given) match. ``pin`` takes product ids only and puts them at ``position`` (1 = first), in the
    order listed. ``boost`` / ``bury`` raise / lower the score by ``amount`` times the spread of the
    list's scores (0.1 = a tenth of the gap between the best and the worst candidate).
    """

    id: int
    action: str
    query: str | None = None
    match: str = "exact"
    category: str | None = None
    products: tuple[str, ...] = ()
    brand: str | None = None
    target_category: str | None = None
    amount: float | None = None
    position: int | None = None
    enabled: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "products", tuple(str(p) for p in self.products))
        rid = self.id if isinstance(self.id, int) else None

        def fail(name: str, message: str) -> RuleError:
            return RuleError(name, message, rid)

        for name in ("action", "match", "query", "category", "brand", "target_category", "note"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise fail(name, f"must be text, got {type(value).__name__}")
        if not isinstance(self.enabled, bool):
            raise fail("enabled", f"must be true or false, got {self.enabled!r}")
        if not isinstance(self.id, int) or isinstance(self.id, bool) or self.id < 1:
            raise fail("id", f"must be a whole number from 1, got {self.id!r}")
        if self.action not in ACTIONS:
            raise fail("action", f"must be one of {', '.join(ACTIONS)}; got {self.action!r}")
        if self.match not in MATCHES:
            raise fail("match", f"must be one of {', '.join(MATCHES)}; got {self.match!r}")
        if self.query is not None and not normalise_query(self.query):
            raise fail("query", "has no words; leave it out to match every query")
        if self.category is not None and not self.category.strip():
            raise fail("category", "is empty; leave it out to match every category")
        if not (self.products or self.brand or self.target_category):
            raise fail("products", "the rule acts on nothing: give product ids, a brand or a target_category")
        if self.action == "pin":
            if self.brand or self.target_category:
                raise fail("products", "a pin takes product ids only, not a brand or target_category")
            if not isinstance(self.position, int) or isinstance(self.position, bool) or self.position < 1:
                raise fail("position", f"a pin needs a position from 1 (the first place), got {self.position!r}")
        elif self.position is not None:
            raise fail("position", f"only a pin has a position, not a {self.action}")
        if self.action in ("boost", "bury"):
            amount = self.amount
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
                raise fail("amount", f"a {self.action} needs a positive amount, got {amount!r}")
            if amount <= 0:
                raise fail("amount", f"a {self.action} needs a positive amount, got {amount!r}")
        elif self.amount is not None:
            raise fail("amount", f"only boost and bury have an amount, not {self.action}")

    def applies(self, query: str | None, category: str | None) -> bool:
        """Whether the rule is in force for this request (``query`` already normalised)."""
        if not self.enabled:
            return False
        if self.query is not None and (not query or not _query_matches(normalise_query(self.query), query, self.match)):
            return False
        if self.category is not None and (not category or not _in_category(self.category, category)):
            return False
        return True

    def targets(self, item_id: str, product: Product | None) -> bool:
        """Whether the rule acts on this item."""
        if item_id in self.products:
            return True
        if not (self.brand or self.target_category) or product is None:
            return False
        if self.brand and product.brand.casefold() != self.brand.casefold():
            return False
        if self.target_category and not _in_category(self.target_category, product.category):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults, so stored rules stay short."""
        out: dict[str, Any] = {"id": self.id, "action": self.action}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in out or value == f.default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Rule:
        if not isinstance(raw, Mapping):
            raise RuleError("rules", f"each rule must be an object, got {type(raw).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        rid = raw.get("id") if isinstance(raw.get("id"), int) else None
        if unknown:
            raise RuleError(unknown[0], f"is not a rule field; valid fields: {', '.join(sorted(names))}", rid)
        for required in ("id", "action"):
            if required not in raw:
                raise RuleError(required, "is required", rid)
        products = raw.get("products", ())
        if isinstance(products, str) or not isinstance(products, Sequence):
            raise RuleError("products", "must be a list of product ids", rid)
        return cls(**{**raw, "products": tuple(products)})


@dataclass(frozen=True)
class Pin:
    """Put ``item_id`` at ``position`` (1 = first) because of rule ``rule_id``."""

    position: int
    item_id: str
    rule_id: int


def place_pins(items: Sequence[ScoredItem], pins: Sequence[Pin], *, copy: bool = True) -> list[ScoredItem]:
    """Move pinned items to their positions; others keep their order around them.

    A product pinned twice keeps its first pin. Two pins on one position: the first listed gets it,
    the next takes the next free place. A position past the end of the list means the end.
    Pins on items not in ``items`` are ignored. Pinned items get the reason ``"pinned by rule N"``.
    ``copy=False``: the caller owns ``items``, and they get their reasons in place.
    """
    out = fresh(items) if copy else list(items)
    present = {item.id: item for item in out}
    slot_of: dict[int, ScoredItem] = {}
    seen: set[str] = set()
    for pin in pins:
        item = present.get(pin.item_id)
        if item is None or pin.item_id in seen:
            continue
        seen.add(pin.item_id)
        position = pin.position
        while position in slot_of:
            position += 1
        slot_of[position] = item
        add_reason(item, f"pinned by rule {pin.rule_id}")
    rest = iter([item for item in out if item.id not in seen])
    placed: list[ScoredItem] = []
    for position in range(1, len(out) + 1):
        if position in slot_of:
            placed.append(slot_of.pop(position))
        else:
            nxt = next(rest, None)
            if nxt is None:
                break
            placed.append(nxt)
    placed += [slot_of[p] for p in sorted(slot_of)]
    return placed


def _merge(kept: list[ScoredItem], moved: list[ScoredItem]) -> list[ScoredItem]:
    """``moved`` (best first) merged into ``kept`` by score; ``kept`` keeps its own order; ties to ``kept``."""
    out: list[ScoredItem] = []
    i = j = 0
    while i < len(kept) and j < len(moved):
        if moved[j].score > kept[i].score:
            out.append(moved[j])
            j += 1
        else:
            out.append(kept[i])
            i += 1
    return out + kept[i:] + moved[j:]


@dataclass(frozen=True)
class RuleSet:
    """A shop's rules. ``hide_out_of_stock`` (on by default) and ``filters`` hold for every request."""

    rules: tuple[Rule, ...] = ()
    hide_out_of_stock: bool = True
    filters: SearchFilters = field(default_factory=SearchFilters)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=lambda r: r.id)))
        ids = [rule.id for rule in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise RuleError("id", f"rule ids must be unique; repeated: {', '.join(map(str, dupes))}")

    # editing -----------------------------------------------------------------------------
    def get(self, rule_id: int) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id}; rules: {', '.join(str(r.id) for r in self.rules) or 'none'}")

    def next_id(self) -> int:
        return max((rule.id for rule in self.rules), default=0) + 1

    def with_rule(self, rule: Rule) -> RuleSet:
        """A copy with ``rule`` added, or replacing the rule with the same id."""
        return replace(self, rules=tuple(r for r in self.rules if r.id != rule.id) + (rule,))

    def without(self, rule_id: int) -> RuleSet:
        self.get(rule_id)
        return replace(self, rules=tuple(r for r in self.rules if r.id != rule_id))

    def active(self, query: str | None = None, category: str | None = None) -> list[Rule]:
        """The rules in force for a request, by id."""
        normalised = normalise_query(query) if query else None
        return [rule for rule in self.rules if rule.applies(normalised, category)]

    # applying ----------------------------------------------------------------------------
    def filter(
        self,
        items: Sequence[ScoredItem],
        products: Mapping[str, Product],
        *,
        query: str | None = None,
        category: str | None = None,
        filters: SearchFilters | None = None,
        copy: bool = True,
    ) -> list[ScoredItem]:
        """Drop out-of-stock items (when on, unless the request asks for them with ``in_stock=False``),
        items failing the shop's or the request's filters, and items a hide rule in force targets. With
        filters set, an item with no known product is dropped. The kept items are copies, unless ``copy`` is
        False."""
        mask = self.shown_mask([item.id for item in items], [products.get(item.id) for item in items],
                               query=query, category=category, filters=filters)
        kept = [item for item, keep in zip(items, mask.tolist(), strict=True) if keep]
        return fresh(kept) if copy else kept

    def _hiding(self, query: str | None, category: str | None, filters: SearchFilters | None
                ) -> tuple[list[Rule], list[SearchFilters], bool]:
        """What can hide a product from a request: hide rules in force, filters, and the stock rule."""
        hiders = [rule for rule in self.active(query, category) if rule.action == "hide"]
        checks = [f for f in (self.filters, filters) if f is not None and not f.is_empty()]
        hide_out_of_stock = self.hide_out_of_stock and not (filters is not None and filters.in_stock is False)
        return hiders, checks, hide_out_of_stock

    def shown(self, *, query: str | None = None, category: str | None = None,
              filters: SearchFilters | None = None) -> Callable[[str, Product | None], bool]:
        """What :meth:`filter` keeps, one product at a time: ``shown(product_id, product or None)``."""
        hiders, checks, hide_out_of_stock = self._hiding(query, category, filters)

        def shown(product_id: str, product: Product | None) -> bool:
            if hide_out_of_stock and product is not None and not product.in_stock:
                return False
            if checks and (product is None or not all(f.matches(product) for f in checks)):
                return False
            return not any(rule.targets(product_id, product) for rule in hiders)

        return shown

    def shown_mask(self, ids: Sequence[str], products: Sequence[Product | None], *, query: str | None = None,
                   category: str | None = None, filters: SearchFilters | None = None,
                   in_stock: np.ndarray | None = None) -> np.ndarray:
        """:meth:`shown` of each (id, product) pair, as a bool array; a long list with only the stock rule (or
        nothing) to apply is checked without a call per product. ``in_stock``: each product's stock (True where
        there is no product), when the caller holds it as an array already."""
        hiders, checks, hide_out_of_stock = self._hiding(query, category, filters)
        if hiders or checks:
            shown = self.shown(query=query, category=category, filters=filters)
            return np.fromiter((shown(pid, p) for pid, p in zip(ids, products, strict=True)), bool, len(ids))
        if hide_out_of_stock:
            if in_stock is not None and len(in_stock) == len(products):
                return np.array(in_stock, bool)
            return np.fromiter((p is None or p.in_stock for p in products), bool, len(products))
        return np.ones(len(products), bool)

    def adjust(
        self,
        items: Sequence[ScoredItem],
        products: Mapping[str, Product],
        *,
        query: str | None = None,
        category: str | None = None,
        copy: bool = True,
    ) -> list[ScoredItem]:
        """Apply boost and bury rules in force: change scores, then move only the items they touched.
        ``copy=False``: the caller owns ``items`` (each id once), and they are changed in place."""
        if copy:
            check_unique(items)
        out = fresh(items) if copy else list(items)
        movers = [rule for rule in self.active(query, category) if rule.action in ("boost", "bury")]
        if not movers or not out:
            return out
        scores = [item.score for item in out]
        spread = max(scores) - min(scores)
        unit = spread if spread > 0 else 1.0
        touched: list[ScoredItem] = []
        for item in out:
            product = products.get(item.id)
            hit = False
            for rule in movers:
                if rule.targets(item.id, product):
                    assert rule.amount is not None
                    delta = (rule.amount if rule.action == "boost" else -rule.amount) * unit
                    item.score += delta
                    item.parts[f"rule:{rule.id}"] = delta
                    add_reason(item, f"{'boosted' if rule.action == 'boost' else 'buried'} by rule {rule.id}")
                    hit = True
            if hit:
                touched.append(item)
        ids = {item.id for item in touched}
        touched.sort(key=lambda item: -item.score)  # stable: ties keep their order
        return _merge([item for item in out if item.id not in ids], touched)

    def pins(self, query: str | None = None, category: str | None = None) -> list[Pin]:
        """Pins in force for a request, by rule id; a rule's products take consecutive positions."""
        return [
            Pin(rule.position + k, product_id, rule.id)
            for rule in self.active(query, category)
            if rule.action == "pin" and rule.position is not None
            for k, product_id in enumerate(rule.products)
        ]

    def apply(
        self,
        items: Sequence[ScoredItem],
        products: Mapping[str, Product],
        *,
        query: str | None = None,
        category: str | None = None,
        filters: SearchFilters | None = None,
    ) -> list[ScoredItem]:
        """Filter, then boost / bury, then pin: the whole rule stage on its own.

        ``category`` (the category being browsed) defaults to ``filters.category``.
        """
        if category is None and filters is not None:
            category = filters.category
        kept = self.filter(items, products, query=query, category=category, filters=filters)
        adjusted = self.adjust(kept, products, query=query, category=category)
        return place_pins(adjusted, self.pins(query, category))

    # storing -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        wanted = {f.name: getattr(self.filters, f.name) for f in fields(SearchFilters)}
        return {
            "version": FORMAT_VERSION,
            "hide_out_of_stock": self.hide_out_of_stock,
            "filters": {k: v for k, v in wanted.items() if v is not None},
            "rules": [rule.to_dict() for rule in self.rules],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RuleSet:
        if not isinstance(raw, Mapping):
            raise RuleError("rules", f"a rule set must be an object, got {type(raw).__name__}")
        known = {"version", "hide_out_of_stock", "filters", "rules"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise RuleError(unknown[0], f"is not a rule set field; valid fields: {', '.join(sorted(known))}")
        version = raw.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise RuleError("version", f"rule format {version!r} is not supported; this version reads {FORMAT_VERSION}")
        hide = raw.get("hide_out_of_stock", True)
        if not isinstance(hide, bool):
            raise RuleError("hide_out_of_stock", f"must be true or false, got {hide!r}")
        filters = raw.get("filters") or {}
        filter_names = {f.name for f in fields(SearchFilters)}
        if not isinstance(filters, Mapping) or set(filters) - filter_names:
            raise RuleError("filters", f"must be an object with some of: {', '.join(sorted(filter_names))}")
        rules = raw.get("rules") or []
        if not isinstance(rules, Sequence) or isinstance(rules, str):
            raise RuleError("rules", "must be a list of rules")
        return cls(tuple(Rule.from_dict(r) for r in rules), hide, _filters_from_dict(filters))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RuleSet:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleError("rules", f"is not valid JSON: {exc}") from None
        return cls.from_dict(raw)


def _filters_from_dict(raw: Mapping[str, Any]) -> SearchFilters:
    for name, value in raw.items():
        if value is None:
            continue
        if name in ("price_min", "price_max"):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        elif name == "in_stock":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise RuleError(f"filters.{name}", f"has the wrong type: {value!r}")
    return SearchFilters(**raw)


def load_rules(store: Store) -> RuleSet:
    """The shop's rules (an empty set, hiding out-of-stock items, when none are stored)."""
    raw = store.get_setting(SETTING_KEY)
    return RuleSet() if raw is None else RuleSet.from_dict(raw)


def save_rules(store: Store, ruleset: RuleSet) -> None:
    store.set_setting(SETTING_KEY, ruleset.to_dict())
