"""Review topics (aspects) by zero-shot similarity, with keyword cues.

Each topic has a description and keywords (English and Chinese). A review gets a topic when one of its
keywords occurs in the review, or when the review's multilingual-e5 similarity to the topic's description
exceeds its mean similarity to all topics by ``margin`` (a review about everything is about nothing). A shop
can replace the list (setting ``sentiment.topics``: ``[{"name", "description", "keywords"}]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.description.strip():
            raise ValueError("a topic needs a name and a description")


DEFAULT_TOPICS: tuple[Topic, ...] = (
    Topic("delivery", "delivery and shipping: the package arrived late or fast",
          ("delivery", "shipping", "shipped", "arrived", "package", "parcel", "courier", "快递", "物流", "发货",
           "送货", "到货")),
    Topic("quality", "product quality: well made or broke, the material",
          ("quality", "broke", "broken", "fell apart", "cheaply made", "well made", "durable", "material", "fabric",
           "质量", "做工", "材质", "坏了", "破")),
    Topic("size/fit", "size and fit: too small, too big, fits well",
          ("size", "fit", "fits", "small", "large", "tight", "loose", "runs big", "尺码", "大小", "合身", "偏小",
           "偏大")),
    Topic("price", "price and value for money: expensive or cheap",
          ("price", "expensive", "overpriced", "value for money", "worth", "cost", "价格", "性价比", "贵", "便宜",
           "价钱")),
    Topic("service", "customer service: seller, support, refund, return",
          ("customer service", "seller", "support", "refund", "return", "replacement", "客服", "服务", "态度",
           "退货", "退款", "售后")),
)


@dataclass
class TopicTagger:
    topics: Sequence[Topic] = DEFAULT_TOPICS
    margin: float = 0.03
    use_embeddings: bool = True
    _vectors: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.topics]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"topics need distinct names, got {names}")

    @classmethod
    def from_settings(cls, value: Any) -> TopicTagger:
        """From the ``sentiment.topics`` setting (None: the default list)."""
        if value is None:
            return cls()
        if not isinstance(value, list) or not value:
            raise ValueError('sentiment.topics must be a list of {"name", "description", "keywords"}')
        return cls([Topic(str(t["name"]), str(t.get("description") or t["name"]),
                          tuple(str(k) for k in t.get("keywords", []))) for t in value])

    def _keyword_hits(self, text: str) -> set[str]:
        low = text.lower()
        hits = set()
        for topic in self.topics:
            for word in topic.keywords:
                w = word.lower()
                ascii_word = w.isascii()
                if (ascii_word and re.search(rf"\b{re.escape(w)}\b", low)) or (not ascii_word and w in low):
                    hits.add(topic.name)
                    break
        return hits

    def tag(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """The topics of each text, in the list's order."""
        out = [self._keyword_hits(t) for t in texts]
        if self.use_embeddings and texts:
            from shoprank.encoders.biencoder import E5Encoder
            from shoprank.sentiment.linear import clip_text

            encoder = E5Encoder()
            if self._vectors is None:
                self._vectors = encoder.encode_queries([t.description for t in self.topics])
            sims = encoder.encode_docs([clip_text(t, 128) or " " for t in texts]) @ self._vectors.T  # (n, topics)
            lifted = sims - sims.mean(axis=1, keepdims=True)
            for i, row in enumerate(lifted):
                out[i].update(self.topics[j].name for j in np.flatnonzero(row >= self.margin))
        order = [t.name for t in self.topics]
        return [tuple(name for name in order if name in hits) for hits in out]
