"""Facet counts over code arrays: the same counts, values and order as counting product by product."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from shoprank.data.records import Product
from shoprank.search.facets import price_bucket as _bucket
from shoprank.search.facets import price_facet as _price_facet
from shoprank.serving.catalog import Catalog


def counted_one_by_one(catalog: Catalog, ids: list[str], top: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The reference: Counters filled product by product in the order of ``ids``."""
    categories: Counter[str] = Counter()
    brands: Counter[str] = Counter()
    prices: Counter[int] = Counter()
    stock: Counter[bool] = Counter()
    for product_id in ids:
        entry = catalog.entries.get(product_id)
        if entry is None:
            continue
        if entry.top_category:
            categories[entry.top_category] += 1
        if entry.brand:
            brands[entry.brand] += 1
        if entry.price is not None:
            prices[_bucket(entry.price)] += 1
        stock[entry.in_stock] += 1
    return {"category": [{"value": v, "count": n} for v, n in categories.most_common(top)],
            "brand": [{"value": v, "count": n} for v, n in brands.most_common(top)],
            "price": [_price_facet(i, prices[i]) for i in sorted(prices)],
            "in_stock": [{"value": v, "count": stock[v]} for v in (True, False) if stock[v]]}


def test_facets_match_counting_product_by_product() -> None:
    rng = random.Random(0)
    products = [Product(id=f"p{n}", title=f"thing {n}", brand=rng.choice(["", "acme", "zeta", "mono", "b"]),
                        category=rng.choice(["", "Tools > Drills", "Garden", "Kitchen > Pans", "Bath"]),
                        price=rng.choice([None, 0.0, 9.99, 10.0, 24.0, 60.0, 999.0, 1000.0, 5000.0]),
                        in_stock=rng.random() < 0.8) for n in range(400)]
    catalog = Catalog(None, snapshot=(products, 1))  # type: ignore[arg-type]
    for trial in range(30):
        ids = rng.sample([p.id for p in products], rng.randint(0, 400)) + ["unknown"] * (trial % 2)
        for top in (20, 2):
            assert catalog.facets(ids, top) == counted_one_by_one(catalog, ids, top)
    catalog.entries = {k: v for k, v in catalog.entries.items() if k != "p0"}  # a change: the arrays follow it
    assert catalog.facets(["p0", "p1"]) == counted_one_by_one(catalog, ["p0", "p1"])
    assert catalog.facets([]) == {"category": [], "brand": [], "price": [], "in_stock": []}
