"""Synonyms suggested from the shop's own log, for a merchandiser to accept or ignore (never applied alone).

* Reformulations: a shopper searches ``q1``, clicks nothing, and within ``window_s`` searches ``q2`` and
  clicks: ``q1 => q2`` (``q2`` typed on from ``q1`` is a longer query, not a reformulation, and is skipped).
* Shared clicks: two queries whose clicked products overlap (Jaccard ≥ ``min_overlap`` over at least
  ``min_shared`` products): ``q1, q2``.
Each suggestion carries its evidence count; pairs the shop's synonyms already cover are left out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoprank.data.outcomes import Outcome
from shoprank.synonyms.rules import Synonyms, normalise


@dataclass(frozen=True)
class MiningConfig:
    window_s: float = 120.0
    min_reformulations: int = 2
    min_shared: int = 2
    min_overlap: float = 0.5
    max_words: int = 3
    limit: int = 50

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.min_reformulations < 1 or self.min_shared < 1:
            raise ValueError("MiningConfig: window_s must be above 0, min_reformulations and min_shared at least 1")
        if not 0 < self.min_overlap <= 1:
            raise ValueError(f"MiningConfig.min_overlap must lie in (0, 1], got {self.min_overlap}")


def _covered(synonyms: Synonyms, a: str, b: str) -> bool:
    return any(b == t for t, _ in synonyms.expand(a).added) or any(a == t for t, _ in synonyms.expand(b).added)


def mine_synonyms(outcomes: Iterable[Outcome], existing: Synonyms | None = None,
                  config: MiningConfig | None = None) -> list[dict[str, Any]]:
    config = config or MiningConfig()
    existing = existing or Synonyms()
    by_user: dict[str, list[tuple[float, str, bool]]] = defaultdict(list)
    clicked: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes:
        imp = outcome.impression
        if imp.surface != "search" or imp.page != 1 or not imp.query:
            continue
        query = normalise(imp.query)
        if not query or len(query.split()) > config.max_words:
            continue
        clicks = outcome.clicked_items()
        clicked[query].update(clicks)
        if imp.user_id:
            by_user[imp.user_id].append((imp.timestamp, query, bool(clicks)))
    reformulated: Counter[tuple[str, str]] = Counter()
    for searches in by_user.values():
        searches.sort()
        for (t1, q1, c1), (t2, q2, c2) in zip(searches, searches[1:], strict=False):
            if not c1 and c2 and q1 != q2 and t2 - t1 <= config.window_s and not q2.startswith(q1):
                reformulated[(q1, q2)] += 1
    out: list[dict[str, Any]] = []
    for (q1, q2), n in reformulated.most_common():
        if n >= config.min_reformulations and not _covered(existing, q1, q2):
            out.append({"rule": f"{q1} => {q2}", "kind": "reformulation", "evidence": n})
    queries = sorted(q for q, items in clicked.items() if len(items) >= config.min_shared)
    pairs = []
    for i, a in enumerate(queries):
        for b in queries[i + 1 :]:
            shared = len(clicked[a] & clicked[b])
            if shared >= config.min_shared:
                overlap = shared / len(clicked[a] | clicked[b])
                if overlap >= config.min_overlap and not _covered(existing, a, b):
                    pairs.append({"rule": f"{a}, {b}", "kind": "shared_clicks", "evidence": shared,
                                  "overlap": round(overlap, 3)})
    pairs.sort(key=lambda p: (-p["evidence"], -p["overlap"], p["rule"]))
    return (out + pairs)[: config.limit]
