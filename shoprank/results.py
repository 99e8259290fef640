"""What search and recommendation return, and the filters a search can take."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoprank.data.records import Product


@dataclass
class ScoredItem:
    """One result: the product id, its final score, the parts it was made of, and why it is there."""

    id: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchFilters:
    """Constraints a result must meet. Category matches any level of the product's category path."""

    category: str | None = None
    brand: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.category, self.brand, self.price_min, self.price_max, self.in_stock))

    def matches(self, product: Product) -> bool:
        if self.in_stock is not None and product.in_stock != self.in_stock:
            return False
        if self.brand is not None and product.brand.casefold() != self.brand.casefold():
            return False
        if self.category is not None:
            wanted = self.category.casefold()
            path = [p.casefold() for p in product.category_path]
            if wanted not in path and product.category.casefold() != wanted:
                return False
        if self.price_min is not None and (product.price is None or product.price < self.price_min):
            return False
        if self.price_max is not None and (product.price is None or product.price > self.price_max):
            return False
        return True
