"""``demo_serve``: serve the demo shops, and once they are loaded print the URL, a key and example requests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from shoprank.bundles import latest_version
from shoprank.keys import KeyStore
from shoprank.serving.app import build_server
from shoprank.serving.examples import example_requests

DEMO_KEY_NAME = "demo"
DEMO_KEY_DAYS = 30
BASELINE_WAIT = 120.0  # seconds the banner waits for the baseline bundles of untrained shops
SWAP_WAIT = 60.0  # seconds "training finished" waits for the server to swap in the last published models


def demo_key(home: str | Path) -> tuple[str, Any]:
    """A fresh admin key named "demo" (30 days); earlier demo keys are revoked so they do not pile up."""
    keys = KeyStore(home)
    for record in keys.list_keys():
        if record.name == DEMO_KEY_NAME and record.revoked_at is None:
            keys.revoke(record.id)
    return keys.create("admin", name=DEMO_KEY_NAME, expires_in=DEMO_KEY_DAYS * 86_400)


def _sample(registry: Any, shop: str) -> tuple[str | None, str | None]:
    """A recent (user, item) of a shop, for the example requests."""
    if not registry.is_open(shop):
        return None, None
    store = registry.get(shop).store
    for user in store.recent_users(1, scan=1):
        for event in store.user_events(user, 1):
            return event.user_id, event.item_id
    return None, None


def banner(base_url: str, key: str | None, record: Any, registry: Any, home: Path) -> str:
    states = registry.loaded()
    def pick(kind: str, size: Any) -> str | None:  # a trained model first, else the biggest baseline shop
        serving = [s for s in states if s.slots[kind].engine is not None]
        ranked = sorted(serving, key=lambda s: (not str(s.slots[kind].version).startswith("baseline-"), size(s)))
        return ranked[-1].name if ranked else None

    search_shop = pick("search", lambda s: len(s.catalog))
    recs_shop = pick("recommend", lambda s: s.store.event_count())
    lines = [f"\nshoprank is serving {len(states)} shop(s) at {base_url}/"]
    for state in states:
        models = ", ".join(f"{kind} {slot.version}" for kind, slot in state.slots.items() if slot.engine is not None)
        lines.append(f"  {state.name:14} {len(state.catalog):>8,} products   {models or 'no models'}")
    if key is None:
        lines.append("OPEN ACCESS: requests need no key (local demo only; the page says so).")
        lines.append(f"storefront page: {base_url}/")
    else:
        lines.append(f"storefront page: {base_url}/#key={key}")
        lines.append(f"demo key (admin, expires in {DEMO_KEY_DAYS} days; 'shoprank keys revoke {record.id}' ends it):")
        lines.append(f"  {key}")
    lines.append(f"API documentation: {base_url}/docs")
    user, item = _sample(registry, recs_shop or search_shop or "")
    examples = example_requests(base_url, key, search_shop=search_shop or "SHOP", recs_shop=recs_shop or "SHOP",
                                query="cordless drill", user_id=user or "u1", product_id=item or "p1")
    lines.append("three example requests:")
    lines += [f"  {e}" for e in examples]
    lines.append("press Ctrl+C to stop")
    return "\n".join(lines)


def _unswapped(registry: Any) -> list[tuple[str, str]]:
    """(shop, kind) of each loaded engine whose shop has published a newer bundle than the one it serves."""
    return [(state.name, kind) for state in registry.loaded() for kind, slot in state.slots.items()
            if slot.engine is not None and latest_version(state.shop.models_path, kind) not in (None, slot.version)]


def announce_swaps(registry: Any, training: Any, stop: threading.Event, every: float = 2.0) -> None:
    """Print each shop's model change (baseline -> trained) as the server swaps it in; and when training ends,
    once the server serves what it published (or after ``SWAP_WAIT`` seconds)."""
    seen = {(s.name, kind): slot.version for s in registry.loaded() for kind, slot in s.slots.items()}
    ended, ended_at = False, None
    while not stop.wait(every):
        for state in registry.loaded():
            for kind, slot in state.slots.items():
                before = seen.get((state.name, kind))
                if slot.version != before and slot.engine is not None:
                    seen[(state.name, kind)] = slot.version
                    print(f"\n>> shop '{state.name}' now serves {kind} model {slot.version}"
                          + (f" (was {before})" if before else "") + "; the storefront uses it from now on",
                          flush=True)
        if training is not None and not ended and training.poll() is not None:
            ended_at = ended_at or time.monotonic()
            if not _unswapped(registry) or time.monotonic() - ended_at > SWAP_WAIT:
                ended = True
                print(f"\n>> background training finished (exit {training.returncode})", flush=True)


def demo_serve(home: str | Path, host: str = "127.0.0.1", port: int = 8000, open_access: bool = False, *,
               config: Any = None, training: Any = None) -> int:
    """Serve every shop of ``home``; print the URL, a demo key and three example requests once loaded, then
    each model the server swaps in (``training``: the background training process, if any)."""
    home = Path(home)
    key, record = (None, None) if open_access else demo_key(home)
    server, app = build_server(home, host, port, open_access, config=config)
    shown = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

    def announce() -> None:
        registry = app.state.registry
        while not (server.started and registry.ready.is_set()):
            if server.should_exit:
                return
            time.sleep(0.1)
        waited = time.monotonic()  # a shop without a trained model: its baseline is being built
        while time.monotonic() - waited < BASELINE_WAIT and any(
                slot.engine is None and slot.state == "missing"
                for shop in registry.loaded() for slot in shop.slots.values()):
            if server.should_exit:
                return
            time.sleep(0.2)
        print(banner(shown, key, record, app.state.registry, home), flush=True)
        announce_swaps(app.state.registry, training, stop)

    stop = threading.Event()

    print(f"starting the server at {shown}/ and loading the shops' models ...", flush=True)
    threading.Thread(target=announce, name="shoprank-demo-banner", daemon=True).start()
    try:
        server.run()
    finally:
        stop.set()
    return 0
