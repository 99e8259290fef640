"""Product upserts that merge (the default) or replace, the same for ``shoprank ingest`` and the HTTP API.

Merge: a stored product keeps every field the new record does not set (a CSV without a ``description``
column leaves descriptions alone); ``attributes`` are merged key by key. Replace: the new record is the
whole product, so fields it lacks are emptied. A new id is stored as given either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shoprank.data.records import Product
from shoprank.store.base import Store


@dataclass(frozen=True)
class ProductUpdate:
    """A parsed product and the fields its record set (:func:`shoprank.data.records.product_fields`)."""

    product: Product
    fields: frozenset[str]


def merge(old: Product, update: ProductUpdate) -> Product:
    """``old`` with the fields ``update`` sets taken from it; attributes merged key by key."""
    data = old.to_dict()
    new = update.product.to_dict()
    for name in update.fields:
        if name == "attributes":
            data["attributes"] = {**old.attributes, **update.product.attributes}
        else:
            data[name] = new[name]
    return Product(**data)


def resolve(store: Store, updates: Sequence[ProductUpdate], *, replace: bool = False) -> list[Product]:
    """The products to store for ``updates``: merged into what the store holds, or (``replace``) as given.
    Several updates of one id apply in order."""
    if replace:
        return [u.product for u in updates]
    ids = list(dict.fromkeys(u.product.id for u in updates))
    current: dict[str, Product] = {p.id: p for p in store.get_products(ids) if p is not None}
    out: list[Product] = []
    for update in updates:
        old = current.get(update.product.id)
        product = update.product if old is None else merge(old, update)
        current[product.id] = product
        out.append(product)
    return out
