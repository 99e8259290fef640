"""Small engines that honour the search and recommender contracts, for tests and the benches that need a server
in seconds (the load generator's check, the reliability and scale harnesses).

They are not part of the package: the production loader refuses a bundle naming ``"engine": "fake"``. Tests
serve them by passing ``loaders=FAKE_LOADERS`` to ``create_app``, and real server processes run through
``python -m tests.support.serve`` (``shoprank serve`` with :func:`fake_or_real_loaders` installed).

They read a (tiny) published bundle, so bundle publishing, corruption and reload behave as with the real
engines, and they read the store like the real ones (the recommender reads a user's events at call time).
Scoring is simple word overlap and category affinity: known answers on tiny data.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from shoprank.bundles import open_bundle, publish
from shoprank.data.limits import EVENT_WEIGHTS
from shoprank.data.records import Product
from shoprank.results import ScoredItem, SearchFilters
from shoprank.shops import Shop

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def publish_fake_bundle(shop: Shop, kind: str, **params: Any) -> str:
    """Publish a tiny bundle of ``kind`` ("search" / "recommend") for ``shop``; returns its version."""
    with publish(shop.models_path, kind, params={"engine": FAKE_ENGINE, **params}) as folder:
        (folder / "weights.json").write_text(json.dumps({"personal": params.get("personal", 0.5)}))
    from shoprank.bundles import latest_version

    version = latest_version(shop.models_path, kind)
    assert version is not None
    return version


class FakeSearchEngine:
    def __init__(self, shop: Shop, version: str, personal: float) -> None:
        self.shop = shop
        self.version = version
        self.personal = personal
        self.store = shop.store(create=False)
        self.products: dict[str, Product] = {}
        self.words: dict[str, set[str]] = {}
        self.upsert_products(list(self.store.iter_products()))

    @classmethod
    def load(cls, shop: Shop, version: str | None = None) -> FakeSearchEngine:
        bundle = open_bundle(shop.models_path, "search", version)
        weights = json.loads((bundle.path / "weights.json").read_text())
        return cls(shop, bundle.version, float(weights["personal"]))

    def upsert_products(self, products: Sequence[Product]) -> None:
        for p in products:
            self.products[p.id] = p
            self.words[p.id] = _words(f"{p.title} {p.brand} {p.category}")

    def delete_products(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.products.pop(i, None)
            self.words.pop(i, None)

    def context(self, ids: Sequence[str]) -> tuple[dict[str, Product], None]:
        return {i: self.products[i] for i in ids if i in self.products}, None

    def _vocabulary(self) -> set[str]:
        return set().union(*self.words.values()) if self.words else set()

    def correction(self, query: str) -> str | None:
        """Words the catalogue lacks replaced by the closest catalogue word (difflib), as a spelling index would."""
        import difflib

        vocabulary = self._vocabulary()
        typed = [w.casefold() for w in _WORD.findall(query)]
        fixed = [w if w in vocabulary or len(w) < 5 else
                 next(iter(difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.8)), w) for w in typed]
        return " ".join(fixed) if fixed != typed else None

    def search(self, query: str, k: int = 10, offset: int = 0, filters: SearchFilters | None = None,
               user_id: str | None = None, explain: int | None = None, expansion: Sequence[tuple[str, float]] = ()
               ) -> tuple[list[ScoredItem], int]:
        wanted = _words(query)
        corrected = self.correction(query)
        if corrected:
            wanted |= set(corrected.split())
        typed = [w.casefold() for w in _WORD.findall(query)]
        vocabulary = self._vocabulary()
        if typed and len(typed[-1]) >= 3 and typed[-1] not in vocabulary:  # an unfinished last word: a prefix
            wanted |= {w for w in vocabulary if w.startswith(typed[-1])}
        weight = {w: 1.0 for w in wanted}
        for term, w in expansion:  # added terms (synonyms) count w each, typed ones 1
            for word in _words(term) - wanted:
                weight[word] = max(weight.get(word, 0.0), w)
        wanted = set(weight)
        liked: Counter[str] = Counter()
        if user_id:
            for event in self.store.user_events(user_id, 50):
                product = self.products.get(event.item_id)
                if product is not None:
                    liked[product.top_category] += EVENT_WEIGHTS[event.type]
        scored = []
        for pid, words in list(self.words.items()):
            product = self.products[pid]
            if filters is not None and not filters.matches(product):
                continue
            lexical = float(sum(weight[w] for w in wanted & words)) if wanted else 0.0
            if wanted and not lexical:
                continue
            personal = self.personal * min(liked[product.top_category], 4.0) / 4.0
            parts = {"lexical": lexical, "personal": personal}
            reasons = [f"matches {', '.join(sorted(wanted & words))}"] if lexical else ["popular"]
            if personal:
                reasons.append(f"you like {product.top_category}")
            scored.append(ScoredItem(pid, lexical + personal, parts, reasons))
        scored.sort(key=lambda item: (-item.score, item.id))
        return scored[offset : offset + k], len(scored)


class FakeRecommender:
    def __init__(self, shop: Shop, version: str) -> None:
        self.shop = shop
        self.version = version
        self.store = shop.store(create=False)
        self.products: dict[str, Product] = {p.id: p for p in self.store.iter_products()}
        self.popularity: Counter[str] = Counter()
        baskets: dict[str, list[str]] = defaultdict(list)
        for event in self.store.iter_events():
            self.popularity[event.item_id] += 1
            baskets[event.user_id].append(event.item_id)
        self.together: dict[str, Counter[str]] = defaultdict(Counter)
        for items in baskets.values():
            for a in set(items):
                for b in set(items):
                    if a != b:
                        self.together[a][b] += 1

    @classmethod
    def load(cls, shop: Shop, version: str | None = None) -> FakeRecommender:
        bundle = open_bundle(shop.models_path, "recommend", version)
        return cls(shop, bundle.version)

    def add_products(self, products: Sequence[Product]) -> None:
        for p in products:
            self.products[p.id] = p

    def _ranked(self, scores: dict[str, float], k: int, reason: str, skip: set[str]) -> list[ScoredItem]:
        ranked = sorted((pid for pid in scores if pid not in skip and pid in self.products),
                        key=lambda pid: (-scores[pid], pid))
        return [ScoredItem(pid, scores[pid], {"affinity": scores[pid]}, [reason]) for pid in ranked[:k]]

    def recommend(self, user_id: str, k: int = 10, history: Sequence[str] | None = None,
                  exclude: Sequence[str] | None = None, slot_at: int | None = None) -> list[ScoredItem]:
        events = self.store.user_events(user_id, 200)
        affinity: Counter[str] = Counter()
        for event in events:
            product = self.products.get(event.item_id)
            if product is not None:
                affinity[product.top_category] += EVENT_WEIGHTS[event.type]
        seen = {e.item_id for e in events} | set(exclude or ())
        scores = {pid: affinity[p.top_category] + 0.01 * self.popularity[pid] for pid, p in self.products.items()}
        top = affinity.most_common(1)
        return self._ranked(scores, k, f"you like {top[0][0]}" if top else "popular", seen)

    def context(self, ids: Sequence[str]) -> tuple[dict[str, Product], None]:
        return {i: self.products[i] for i in ids if i in self.products}, None

    def similar(self, item_id: str, k: int = 10) -> list[ScoredItem]:
        base = self.products[item_id]
        words = _words(base.title)
        scores = {pid: len(words & _words(p.title)) + (1.0 if p.top_category == base.top_category else 0.0)
                  for pid, p in self.products.items()}
        return self._ranked(scores, k, f"like {base.title[:40]}", {item_id})

    def bought_together(self, item_id: str, k: int = 10) -> list[ScoredItem]:
        together = self.together.get(item_id, Counter())
        return self._ranked({pid: float(n) for pid, n in together.items()}, k, "bought together", {item_id})


FAKE_LOADERS = {"search": FakeSearchEngine.load, "recommend": FakeRecommender.load}
"""``create_app(home, loaders=FAKE_LOADERS)`` serves the fake engines."""

FAKE_ENGINE = "fake"
"""What a fake bundle's ``params["engine"]`` says."""


def is_fake(shop: Shop, kind: str, version: str | None = None) -> bool:
    return open_bundle(shop.models_path, kind, version, verify=False).params.get("engine") == FAKE_ENGINE


def _fake_or_real(kind: str) -> Callable[[Shop], Any]:
    from shoprank.serving.registry import DEFAULT_LOADERS

    real = DEFAULT_LOADERS[kind]

    def load(shop: Shop, version: str | None = None) -> Any:
        return FAKE_LOADERS[kind](shop, version) if is_fake(shop, kind, version) else real(shop, version)

    return load


def fake_or_real_loaders() -> dict[str, Callable[[Shop], Any]]:
    """A fake bundle loads its fake engine, any other bundle the production one (a real trainer's bundle replacing
    a fake one is served as it would be in production)."""
    return {kind: _fake_or_real(kind) for kind in FAKE_LOADERS}


_TINY_CATALOGUE = {
    "Tools > Power Tools": ("Drill", "Saw", "Sander", "Grinder", "Impact Driver"),
    "Kitchen > Knives": ("Chef Knife", "Paring Knife", "Bread Knife", "Knife Block", "Sharpener"),
    "Garden > Watering": ("Garden Hose", "Sprinkler", "Watering Can", "Hose Reel", "Spray Nozzle"),
    "Toys > Puzzles": ("Jigsaw Puzzle", "Puzzle Cube", "Wooden Puzzle", "3D Puzzle", "Puzzle Mat"),
}
_BRANDS = ("Acme", "Bosch", "Zwilling", "Gardena")


def tiny_shop(home: Any, name: str = "tiny", *, search: bool = True, recommend: bool = True) -> Shop:
    """A 40-product shop with a few users' events and fake bundles: known answers for serving tests."""
    import time

    from shoprank.data.records import parse_event, parse_product

    shop = Shop(name, home)
    products = []
    for c, (category, kinds) in enumerate(_TINY_CATALOGUE.items()):
        for i, kind in enumerate(kinds):
            for variant in (0, 1):
                products.append(parse_product({
                    "id": f"{category.split()[0].lower()}-{i}-{variant}",
                    "title": f"{_BRANDS[(i + variant) % 4]} {kind}{' Pro' if variant else ''}",
                    "category": category, "brand": _BRANDS[(i + variant) % 4], "price": 5.0 + 30 * c + 7 * i + variant,
                    "currency": "EUR",
                    "in_stock": (i + variant) % 5 != 4, "description": f"A {kind.lower()} for everyday use.",
                }))
    now = time.time() - 3600
    events = []
    for u in range(6):
        category = list(_TINY_CATALOGUE)[u % 4].split()[0].lower()
        for j in range(4):
            events.append(parse_event({"event_id": f"seed-{u}-{j}", "user_id": f"u{u}", "item_id": f"{category}-{j}-0",
                                       "type": "purchase" if j % 2 else "view", "timestamp": now + u * 10 + j}))
    with shop.store() as store:
        store.upsert_products(products)
        store.append_events(events)
    if search:
        publish_fake_bundle(shop, "search")
    if recommend:
        publish_fake_bundle(shop, "recommend")
    return shop
