"""Validation limits of the data contract, written down in one place.

Every record that enters a shop is checked against these numbers; the error for a
violation names the limit by its name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "rating")
"""The fixed set of event types, weakest signal first."""

EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.25,
    "click": 0.5,
    "add_to_cart": 1.0,
    "purchase": 2.0,
    "rating": 1.0,
}
"""How much each event type counts as evidence of interest (popularity, co-visitation, trend, category
affinity). The one table of event weights: every count of events by type reads it."""

EVENT_GRADES: dict[str, float] = {"purchase": 1.0, "add_to_cart": 0.8, "click": 0.6}
"""The relevance a shopper's action gives a served product, as a share of the top gain (search's labels from
behaviour). Views grade nothing."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on the size and range of record fields."""

    max_id_bytes: int = 256
    max_title_chars: int = 1_000
    max_description_chars: int = 20_000
    max_category_chars: int = 1_000
    max_brand_chars: int = 256
    max_query_chars: int = 1_000
    max_attributes: int = 200
    max_attribute_chars: int = 2_000
    max_price: float = 1e9
    min_timestamp: float = datetime(1990, 1, 1, tzinfo=UTC).timestamp()  # logs from the 1990s exist (MovieLens)
    future_slack_seconds: float = 86_400.0
    max_grade: float = 100.0
    max_position: int = 100_000
    max_review_chars: int = 20_000
    max_review_title_chars: int = 1_000
    min_rating: float = 1.0
    max_rating: float = 5.0


LIMITS = Limits()
