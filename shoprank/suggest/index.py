"""Query suggestions for a prefix: popular logged queries that found results, catalogue titles and categories.

Every suggestion is indexed under each of its word starts ("cordless drill" is found by "cor" and by "dri"),
in one sorted key list searched by bisection, so a lookup costs a few bisections whatever the catalogue size.
A prefix of ``typo_from`` characters or more that finds fewer than ``k`` suggestions is also looked up with one
edit (a letter dropped, added, changed or two swapped); those come after the exact matches, marked ``typo``.

Logged queries count only when they found something and were searched at least ``min_searches`` times (a query
typed once is nobody's suggestion, and may be private); their weight is the searches, each counted by its
recency (half-life ``half_life_days``) and once more when it was clicked. A shop with no log yet suggests
catalogue phrases only.
"""

from __future__ import annotations

import bisect
import math
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoprank.data.outcomes import Outcome
from shoprank.data.records import Product


@dataclass(frozen=True)
class SuggestConfig:
    min_searches: int = 2
    half_life_days: float = 14.0
    typo_from: int = 3
    max_categories: int = 2
    max_products: int = 3

    def __post_init__(self) -> None:
        if self.min_searches < 1:
            raise ValueError(f"SuggestConfig.min_searches must be at least 1, got {self.min_searches}")
        if self.half_life_days <= 0:
            raise ValueError(f"SuggestConfig.half_life_days must be above 0, got {self.half_life_days}")
        if self.typo_from < 1:
            raise ValueError(f"SuggestConfig.typo_from must be at least 1, got {self.typo_from}")


def normalise(text: str) -> str:
    """Casefolded NFKC with whitespace collapsed: what prefixes are matched against."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class Entry:
    text: str
    kind: str  # query | product | category
    weight: float
    extra: tuple[tuple[str, Any], ...] = ()

    def to_dict(self, typo: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "kind": self.kind, **dict(self.extra)}
        if typo:
            out["typo"] = True
        return out


KIND_ORDER = {"query": 0, "category": 1, "product": 2}


class SuggestIndex:
    """An immutable index; build a new one when the catalogue or the log changed."""

    def __init__(self, entries: list[Entry], config: SuggestConfig | None = None) -> None:
        self.config = config or SuggestConfig()
        self.entries = entries
        pairs = []
        for n, entry in enumerate(entries):
            words = normalise(entry.text).split(" ")
            for start in range(len(words)):
                pairs.append((" ".join(words[start:]), n))
        pairs.sort()
        self.keys = [k for k, _ in pairs]
        self.ids = [n for _, n in pairs]
        self.alphabet = sorted({ch for k in self.keys for ch in k if ch != " "})

    def __len__(self) -> int:
        return len(self.entries)

    def _lookup(self, prefix: str, cap: int = 2000) -> set[int]:
        lo = bisect.bisect_left(self.keys, prefix)
        hi = bisect.bisect_left(self.keys, prefix + "\U0010ffff")
        return set(self.ids[lo : min(hi, lo + cap)])

    def _edits(self, prefix: str) -> Iterable[str]:
        n = len(prefix)
        for i in range(n):
            yield prefix[:i] + prefix[i + 1 :]
            for ch in self.alphabet:
                yield prefix[:i] + ch + prefix[i + 1 :]
                yield prefix[:i] + ch + prefix[i:]
            if i + 1 < n:
                yield prefix[:i] + prefix[i + 1] + prefix[i] + prefix[i + 2 :]

    def suggest(self, prefix: str, k: int = 8) -> list[dict[str, Any]]:
        """Up to ``k`` suggestions for ``prefix``: queries, then categories, then products, best first."""
        wanted = normalise(prefix)
        if not wanted:
            return []
        exact = self._lookup(wanted)
        fuzzy: set[int] = set()
        if len(exact) < k and len(wanted) >= self.config.typo_from:
            for variant in self._edits(wanted):
                if variant and variant != wanted:
                    fuzzy |= self._lookup(variant, cap=200)
            fuzzy -= exact
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        caps = {"query": k, "category": self.config.max_categories, "product": self.config.max_products}
        for group, typo in ((exact, False), (fuzzy, True)):
            ranked = sorted(group, key=lambda n: (KIND_ORDER[self.entries[n].kind], -self.entries[n].weight,
                                                  self.entries[n].text))
            taken: Counter[str] = Counter()
            for n in ranked:
                entry = self.entries[n]
                key = normalise(entry.text)
                if key in seen or taken[entry.kind] >= caps[entry.kind]:
                    continue
                seen.add(key)
                taken[entry.kind] += 1
                out.append(entry.to_dict(typo))
        return out[:k]


def query_entries(outcomes: Iterable[Outcome], config: SuggestConfig, now: float | None = None) -> list[Entry]:
    """Popular logged search queries that found something, weighted by recency and click-through."""
    now = time.time() if now is None else now
    decay = math.log(2) / (config.half_life_days * 86_400)
    weight: dict[str, float] = defaultdict(float)
    searches: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for outcome in outcomes:
        imp = outcome.impression
        if imp.surface != "search" or imp.page != 1 or not imp.query or not imp.items:
            continue
        key = normalise(imp.query)
        shown.setdefault(key, imp.query)
        searches[key] += 1
        weight[key] += math.exp(-decay * max(0.0, now - imp.timestamp)) * (2.0 if outcome.did("click") else 1.0)
    return [Entry(shown[q], "query", weight[q], (("searches", searches[q]),))
            for q in searches if searches[q] >= config.min_searches]


def catalogue_entries(products: Iterable[Product]) -> list[Entry]:
    """Product titles (weight: in stock first) and every level of every category path (weight: products)."""
    out: list[Entry] = []
    categories: Counter[str] = Counter()
    paths: dict[str, str] = {}
    for p in products:
        if p.title:
            out.append(Entry(p.title, "product", 1.0 if p.in_stock else 0.5, (("id", p.id),)))
        levels = [part.strip() for part in (p.category or "").split(">") if part.strip()]
        for depth in range(len(levels)):
            name = levels[depth]
            categories[name] += 1
            paths.setdefault(name, " > ".join(levels[: depth + 1]))
    out += [Entry(name, "category", float(n), (("path", paths[name]),)) for name, n in categories.items()]
    return out


def build_index(products: Iterable[Product], outcomes: Iterable[Outcome] = (),
                config: SuggestConfig | None = None, now: float | None = None) -> SuggestIndex:
    config = config or SuggestConfig()
    return SuggestIndex(query_entries(outcomes, config, now) + catalogue_entries(products), config)
