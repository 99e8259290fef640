"""Review sentiment (negative / neutral / positive), review topics, trends and alerts."""

from __future__ import annotations

from shoprank.sentiment.labels import LABELS, label_of_rating, polarity

__all__ = ["LABELS", "label_of_rating", "polarity"]
