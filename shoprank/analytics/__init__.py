"""Search analytics: what shoppers search, what finds nothing, where they click, how answers convert."""

from __future__ import annotations

from shoprank.analytics.report import AnalyticsConfig, shop_analytics, summarise

__all__ = ["AnalyticsConfig", "shop_analytics", "summarise"]
