"""Sorting and ranges: ``sort=price_asc|price_desc|newest`` orders the whole matching set before paging (pages
monotone, disjoint, stable); an inverted or negative range is a 422 naming the field. Fake engines on a tiny
shop with known answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprank.cascade.sorting import sort_items
from tests.support.serving import client, served_tiny

KNIVES = {"kitchen-0-0", "kitchen-0-1", "kitchen-1-0", "kitchen-1-1", "kitchen-2-0", "kitchen-2-1", "kitchen-3-0"}
"""Every product with "knife" in its title but kitchen-3-1, out of stock: the shop's default rule hides it."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    with served_tiny(tmp_path) as app_and_key:
        yield app_and_key


async def pages(c: httpx.AsyncClient, n: int, **params: Any) -> tuple[list[dict[str, Any]], set[int]]:
    hits, totals = [], set()
    for page in range(1, n + 1):
        body = (await c.get("/shops/tiny/search", params={"q": "knife", "per_page": 3, "page": page,
                                                          **params})).json()
        hits += body["hits"]
        totals.add(body["total"])
    return hits, totals


@pytest.mark.parametrize("facets", ["true", "false"])
@pytest.mark.anyio
async def test_price_sorted_pages_are_monotone_disjoint_and_cover_the_matches(served: Any, facets: str) -> None:
    app, key = served
    async with client(app, key) as c:
        up, up_totals = await pages(c, 3, sort="price_asc", facets=facets)
        down, _ = await pages(c, 3, sort="price_desc", facets=facets)
        again, _ = await pages(c, 3, sort="price_asc", facets=facets)
        first = (await c.get("/shops/tiny/search", params={"q": "knife", "sort": "price_asc"})).json()
    prices = [h["price"] for h in up]
    assert prices == sorted(prices) and len(prices) == 7
    assert [h["price"] for h in down] == sorted(prices, reverse=True)
    assert {h["id"] for h in up} == KNIVES and len({h["id"] for h in up}) == 7  # disjoint, nothing else
    assert up_totals == {7} and [h["id"] for h in again] == [h["id"] for h in up]
    assert first["sort"] == "price_asc" and first["hits"][0]["id"] == "kitchen-0-0"  # 35.0, the cheapest knife


@pytest.mark.anyio
async def test_newest_first_with_undated_products_last(served: Any) -> None:
    app, key = served
    dated = [{"id": "kitchen-1-0", "title": "Zwilling Paring Knife", "created_at": "2026-01-05T00:00:00Z"},
             {"id": "kitchen-3-0", "title": "Acme Knife Block", "created_at": "2026-03-01T00:00:00Z"},
             {"id": "kitchen-2-0", "title": "Gardena Bread Knife", "created_at": "2025-12-24T00:00:00Z"}]
    async with client(app, key) as c:
        await c.put("/shops/tiny/products", json={"products": dated})
        hits, _ = await pages(c, 3, sort="newest")
    assert [h["id"] for h in hits[:3]] == ["kitchen-3-0", "kitchen-1-0", "kitchen-2-0"]
    assert {h["id"] for h in hits[3:]} == KNIVES - {"kitchen-3-0", "kitchen-1-0", "kitchen-2-0"}


def test_sort_is_stable_and_puts_missing_keys_last() -> None:
    items = ["a", "b", "c", "d", "e"]  # relevance order
    price = {"a": 5.0, "b": None, "c": 2.0, "d": 5.0, "e": 2.0}.get
    assert sort_items(items, "price_asc", price, lambda _: None) == ["c", "e", "a", "d", "b"]
    assert sort_items(items, "price_desc", price, lambda _: None) == ["a", "d", "c", "e", "b"]
    assert sort_items(items, "newest", price, lambda _: None) == items
    assert sort_items(items, "relevance", price, lambda _: None) == items
    with pytest.raises(ValueError, match="valid sorts: relevance, price_asc, price_desc, newest"):
        sort_items(items, "cheapest", price, lambda _: None)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("price_min=100&price_max=10", "price_max"),
        ("price_max=-1", "price_max"),
        ("price_min=-5", "price_min"),
        ("sort=cheapest", "sort"),
    ],
)
@pytest.mark.anyio
async def test_bad_ranges_and_sorts_are_422_naming_the_field(served: Any, query: str, field: str) -> None:
    app, key = served
    async with client(app, key) as c:
        answer = await c.get(f"/shops/tiny/search?q=knife&{query}")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_parameter" and error["field"] == field
