"""One table of event weights (and one of grades): ``shoprank.data.limits``; nothing else maps event types to
numbers of its own."""

from __future__ import annotations

import ast
import math
from pathlib import Path

from shoprank.data.limits import EVENT_TYPES, EVENT_WEIGHTS
from shoprank.data.records import Event
from shoprank.ranking.features import ItemStats

PACKAGE = Path(__file__).resolve().parents[1] / "shoprank"
OWN_SCALES = {
    "shoprank/data/limits.py": "the tables themselves",
    "shoprank/recommend/service.py": "STRENGTH: an order (which event a reason names), not a weight",
}


def test_popularity_counts_events_with_the_shared_weights() -> None:
    events = [Event(f"e{i}", "u", "a", kind, 1.0 + i) for i, kind in enumerate(EVENT_TYPES)]
    events.append(Event("v", "u", "b", "view", 10.0))
    stats = ItemStats.from_events(events)
    assert math.isclose(stats.popularity["a"], math.log1p(sum(EVENT_WEIGHTS.values())))
    assert math.isclose(stats.popularity["b"], math.log1p(EVENT_WEIGHTS["view"]))


def test_no_other_table_of_event_numbers() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Dict) or len(node.keys) < 3:
                continue
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            numbers = all(isinstance(v, ast.Constant) and isinstance(v.value, int | float) for v in node.values)
            if numbers and len(keys) == len(node.keys) and keys <= set(EVENT_TYPES) and name not in OWN_SCALES:
                found.append(f"{name}:{node.lineno}")
    assert not found, f"event types mapped to numbers outside shoprank/data/limits.py: {found}"
