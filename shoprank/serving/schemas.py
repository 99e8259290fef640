"""The shapes of requests and answers, for the OpenAPI schema and /docs (answers are built as plain dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. invalid_record, missing_key, shop_not_found")
    message: str
    field: str | None = Field(None, description="the parameter or record field at fault, e.g. events[3].price")
    details: list[dict[str, Any]] | None = Field(None, description="every problem, when there are several")


class ErrorAnswer(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": text}
    for code, text in {
        400: "malformed request", 401: "no key, or an unknown, revoked or expired key",
        403: "the key's scope does not allow this", 404: "no such shop or product",
        409: "the shop has no model for this endpoint", 413: "body or batch over the limit",
        422: "a parameter or record breaks the contract", 503: "overloaded or not ready; see Retry-After",
    }.items()
}


class Item(BaseModel):
    id: str
    title: str
    score: float
    reasons: list[str] = Field(description="why the item is there, in words")
    parts: dict[str, float] = Field(description="the score parts the final score was made of")
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    currency: str | None = Field(None, description="ISO 4217 code of the price, e.g. EUR, when the shop gives one")
    in_stock: bool | None = None


class FacetValue(BaseModel):
    value: str | bool
    count: int
    min: float | None = None
    max: float | None = None


class SearchAnswer(BaseModel):
    hits: list[Item]
    facets: dict[str, list[FacetValue]] = Field(description="category (top level), brand, price, in_stock, "
                                                "counted over the matching products")
    page: int
    per_page: int
    query: str
    query_truncated: bool
    corrected_query: str | None = Field(None, description="the query as the spelling index corrected it, when it "
                                        "changed a word (results include the corrected words): 'did you mean'")
    did_you_mean: str | None = Field(None, description="nothing matched: a corrected query that has results")
    closest: list[Item] = Field(default_factory=list, description="nothing matched and the shop's search "
                                "settings ask for them (closest_on_empty): the products nearest in meaning, "
                                "which do NOT match the query; never counted in total")
    total: int = Field(description="how many products match the query (after filters and rules)")
    sort: str = Field("relevance", description="the order of the hits: relevance, price_asc, price_desc or newest")
    synonyms: list[dict[str, str]] | None = Field(None, description="terms the shop's synonyms added to the query: "
                                                  "[{term, of}]")
    model_version: str | None
    request_id: str = Field(description="this answer's id: send it with the events it leads to (attribution)")
    experiment: str | None = Field(None, description="the running experiment this answer is part of (absent: none)")
    variant: str | None = Field(None, description="the experiment's variant it shows ('interleaved': both)")


class ItemsAnswer(BaseModel):
    items: list[Item]
    model_version: str | None
    request_id: str = Field(description="this answer's id: send it with the events it leads to (attribution)")
    experiment: str | None = Field(None, description="the running experiment this answer is part of (absent: none)")
    variant: str | None = Field(None, description="the experiment's variant it shows ('interleaved': both)")


class UsersAnswer(BaseModel):
    users: list[str]


class ShopsAnswer(BaseModel):
    shops: list[dict[str, Any]]


class EventsBody(BaseModel):
    events: list[dict[str, Any]] = Field(
        description="events as in the data contract: event_id, user_id, item_id, type, timestamp, ...",
        max_length=10_000,
    )


class EventsAnswer(BaseModel):
    stored: int
    duplicates: int
    attributed: int = Field(0, description="events whose request_id matched one of the shop's impressions")
    unattributed: int = Field(0, description="events whose request_id did not (stored all the same)")


class ProductsBody(BaseModel):
    products: list[dict[str, Any]] = Field(default_factory=list, description="products to upsert",
                                           max_length=10_000)
    delete: list[str] = Field(default_factory=list, description="ids to delete (after the upserts)",
                              max_length=10_000)


class ProductsAnswer(BaseModel):
    stored: int
    updated: int
    deleted: int
    catalog_version: int


def check_range(low: float | None, high: float | None, low_name: str, high_name: str) -> None:
    """An inverted range is a 422 naming the upper bound (negative bounds are refused by the parameters' own
    ``ge=0``)."""
    from shoprank.serving.errors import ApiError

    if low is not None and high is not None and high < low:
        raise ApiError(422, "invalid_parameter", f"{high_name} ({high:g}) is below {low_name} ({low:g}); "
                       f"send {low_name} <= {high_name}", high_name)
