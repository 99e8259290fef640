"""Example requests to print next to a server's URL (``shoprank serve``, the demo)."""

from __future__ import annotations

import json
import time


def example_requests(base_url: str, key: str, shop: str, *, query: str = "drill", user_id: str = "u1",
                     product_id: str = "p1") -> list[str]:
    """Three ready-to-paste curl commands: a search, recommendations for a user, posting a click."""
    auth = f"-H 'Authorization: Bearer {key}'"
    event = {"events": [{"event_id": f"demo-{int(time.time())}", "user_id": user_id, "item_id": product_id,
                         "type": "click", "timestamp": int(time.time())}]}
    return [
        f"curl -s {auth} '{base_url}/shops/{shop}/search?q={query}&per_page=5'",
        f"curl -s {auth} '{base_url}/shops/{shop}/users/{user_id}/recommendations?k=5'",
        f"curl -s {auth} -X POST -H 'Content-Type: application/json' "
        f"-d '{json.dumps(event)}' '{base_url}/shops/{shop}/events'",
    ]
