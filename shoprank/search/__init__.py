"""Search: the online engine, the stack behind it, training and evaluation."""

from __future__ import annotations

from shoprank.search.engine import SearchEngine
from shoprank.search.stack import SearchStack, StackConfig

__all__ = ["SearchEngine", "SearchStack", "StackConfig"]
