"""A small review history with a known surge, for tests and the demo page."""

from __future__ import annotations

import time
from typing import Any

DAY = 86_400.0
POSITIVE_TEXTS = ("Great product, works perfectly", "Love it, would buy again", "Excellent quality and fast delivery",
                  "Very happy with this purchase")
NEUTRAL_TEXTS = ("It is okay, nothing special", "Average, does the job")
NEGATIVE_TEXTS = ("Terrible, it broke after one day", "Awful quality, asking for a refund",
                  "Arrived damaged and the seller never answered", "Worst purchase, do not buy")


def review_history(products: list[str], *, weeks: int = 26, per_week: int = 3, burst_product: str | None = None,
                   burst_size: int = 6, end: float | None = None) -> tuple[list[dict[str, Any]], float]:
    """Raw review rows: every product gets ``per_week`` reviews a week (one in eight negative, one in eight
    neutral); ``burst_product`` also gets ``burst_size`` negative reviews in the last three days.
    Returns (rows, the burst's start time)."""
    end = end if end is not None else time.time() - 3600
    start = end - weeks * 7 * DAY
    rows: list[dict[str, Any]] = []
    n = 0
    for p, product in enumerate(products):
        for w in range(weeks):
            for j in range(per_week):
                n += 1
                kind = n % 8
                text, rating = ((NEGATIVE_TEXTS[n % 4], 1) if kind == 0 else (NEUTRAL_TEXTS[n % 2], 3) if kind == 4
                                else (POSITIVE_TEXTS[n % 4], 5))
                rows.append({"review_id": f"r{p}-{w}-{j}", "product_id": product, "user_id": f"u{n % 17}",
                             "rating": rating, "text": text,
                             "timestamp": start + (w * 7 + 2 * j + p * 0.3) * DAY})
    burst_start = end - 3 * DAY
    if burst_product is not None:
        for b in range(burst_size):
            rows.append({"review_id": f"burst-{b}", "product_id": burst_product, "rating": 1,
                         "text": NEGATIVE_TEXTS[b % 4], "timestamp": burst_start + b * (2.5 * DAY / burst_size)})
    return rows, burst_start
