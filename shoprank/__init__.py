"""shoprank: search and recommendations for online shops.

A pretrained language model, fine-tuned on the shop's own queries and behaviour, fused
with classic signals by a learning-to-rank model. Importing this package loads nothing heavy.
"""

from __future__ import annotations

from shoprank.data.records import Event, Judgment, Product, RecordError
from shoprank.shops import Shop, list_shops
from shoprank.store import Store, open_store

__version__ = "0.1.0"

__all__ = [
    "Event",
    "Judgment",
    "Product",
    "RecordError",
    "Shop",
    "Store",
    "__version__",
    "list_shops",
    "open_store",
]
