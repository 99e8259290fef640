"""Per-shop synonym sets (multi-way and one-way), the query expansion they make, and synonyms mined from the log."""

from __future__ import annotations

from shoprank.synonyms.mine import MiningConfig, mine_synonyms
from shoprank.synonyms.rules import (
    DEFAULT_WEIGHT,
    Expansion,
    ExpansionConfig,
    SynonymError,
    SynonymRule,
    Synonyms,
    explain,
    load_synonyms,
    save_synonyms,
)

__all__ = ["DEFAULT_WEIGHT", "Expansion", "ExpansionConfig", "MiningConfig", "SynonymError", "SynonymRule",
           "Synonyms", "explain", "load_synonyms", "mine_synonyms", "save_synonyms"]
