"""Example requests to print next to a server's URL (the demo, docs)."""

from __future__ import annotations

import json
import time
import urllib.parse


def example_requests(base_url: str, key: str | None, *, search_shop: str, recs_shop: str, query: str = "drill",
                     user_id: str = "u1", product_id: str = "p1") -> list[str]:
    """Three ready-to-paste curl commands: a search, recommendations for a user, posting a click."""
    auth = f"-H 'Authorization: Bearer {key}' " if key else ""
    q = urllib.parse.quote(query)
    user = urllib.parse.quote(user_id, safe="")
    event = {"events": [{"event_id": f"demo-{int(time.time())}", "user_id": user_id, "item_id": product_id,
                         "type": "click", "timestamp": int(time.time())}]}
    body = json.dumps(event).replace("'", "'\\''")
    return [
        f"curl -s {auth}'{base_url}/shops/{search_shop}/search?q={q}&per_page=5'",
        f"curl -s {auth}'{base_url}/shops/{recs_shop}/users/{user}/recommendations?k=5'",
        f"curl -s {auth}-X POST -H 'Content-Type: application/json' -d '{body}' '{base_url}/shops/{recs_shop}/events'",
    ]
