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
import threading
import time
import unicodedata
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

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
MAX_TYPO_RANGES = 48
"""Edits of a prefix that find something, looked at most (a long prefix has hundreds)."""


class SuggestIndex:
    """An immutable index; build a new one when the catalogue or the log changed.

    Entries are ranked once (queries, then categories, then products; heavier first); the sorted key list
    carries each key's entry rank in a numpy array, so the best entries under a prefix are a partial sort of
    one slice, however many keys the prefix covers."""

    def __init__(self, entries: list[Entry], config: SuggestConfig | None = None) -> None:
        self.config = config or SuggestConfig()
        self.entries = sorted(entries, key=lambda e: (KIND_ORDER[e.kind], -e.weight, e.text))
        self.normalised = [normalise(e.text) for e in self.entries]
        counts = Counter(e.kind for e in self.entries)
        self.kind_ranges: dict[str, tuple[int, int]] = {}
        start = 0
        for kind in sorted(KIND_ORDER, key=KIND_ORDER.__getitem__):
            self.kind_ranges[kind] = (start, start + counts[kind])
            start += counts[kind]
        pairs = []
        for rank, text in enumerate(self.normalised):
            words = text.split(" ")
            for first in range(len(words)):
                pairs.append((" ".join(words[first:]), rank))
        pairs.sort()
        self.keys = [k for k, _ in pairs]
        self.ranks = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
        self.alphabet = sorted({ch for k in self.keys[:: max(1, len(self.keys) // 20_000)] for ch in k if ch != " "})
        self._memo: OrderedDict[tuple[str, int], list[dict[str, Any]]] = OrderedDict()
        self._memo_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.entries)

    def _range(self, prefix: str) -> tuple[int, int]:
        lo = bisect.bisect_left(self.keys, prefix)
        return lo, bisect.bisect_left(self.keys, prefix + "\U0010ffff", lo)

    @staticmethod
    def _smallest(ranks: np.ndarray, n: int) -> np.ndarray:
        if len(ranks) > n:
            ranks = np.partition(ranks, n - 1)[:n]
        return np.unique(ranks)

    def _edits(self, prefix: str) -> Iterable[str]:
        n = len(prefix)
        for i in range(n):
            yield prefix[:i] + prefix[i + 1 :]
            for ch in self.alphabet:
                yield prefix[:i] + ch + prefix[i + 1 :]
                if i:
                    yield prefix[:i] + ch + prefix[i:]
            if i + 1 < n:
                yield prefix[:i] + prefix[i + 1] + prefix[i] + prefix[i + 2 :]

    def suggest(self, prefix: str, k: int = 8) -> list[dict[str, Any]]:
        """Up to ``k`` suggestions for ``prefix``: queries, then categories, then products, best first."""
        wanted = normalise(prefix)
        if not wanted:
            return []
        with self._memo_lock:
            memo = self._memo.get((wanted, k))
        if memo is not None:
            return [dict(s) for s in memo]
        caps = {"query": k, "category": self.config.max_categories, "product": self.config.max_products}
        lo, hi = self._range(wanted)
        span = self.ranks[lo:hi]
        exact = []
        for kind, (first, last) in self.kind_ranges.items():
            mine = span[(span >= first) & (span < last)]
            exact.append(self._smallest(mine, 4 * caps[kind]))
        exact_ranks = np.unique(np.concatenate(exact)) if exact else np.zeros(0, np.int64)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        self._take(exact_ranks, caps, seen, out, typo=False)
        if len(out) < k and len(wanted) >= self.config.typo_from:
            found = []
            keys, size = self.keys, len(self.keys)
            for variant in dict.fromkeys(self._edits(wanted)):  # in edit order: results repeat
                if len(found) >= MAX_TYPO_RANGES:
                    break
                vlo = bisect.bisect_left(keys, variant)
                if vlo < size and keys[vlo].startswith(variant) and variant != wanted:
                    vhi = bisect.bisect_left(keys, variant + "\U0010ffff", vlo)
                    found.append(self._smallest(self.ranks[vlo:vhi], 8))
            if found:
                self._take(np.unique(np.concatenate(found)), caps, seen, out, typo=True)
        out = out[:k]
        with self._memo_lock:  # the last 4,096 prefixes asked (requests share the index across threads)
            self._memo[(wanted, k)] = out
            if len(self._memo) > 4096:
                self._memo.popitem(last=False)
        return [dict(s) for s in out]

    def _take(self, ranks: np.ndarray, caps: dict[str, int], seen: set[str], out: list[dict[str, Any]],
              typo: bool) -> None:
        taken: Counter[str] = Counter()
        for rank in ranks.tolist():
            entry = self.entries[rank]
            key = self.normalised[rank]
            if key in seen or taken[entry.kind] >= caps[entry.kind]:
                continue
            seen.add(key)
            taken[entry.kind] += 1
            out.append(entry.to_dict(typo))


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
