"""How long one ``shoprank search`` takes on the command line: loading the models in the process
(``--no-server``) against asking a running ``shoprank serve`` on the same home folder.

The shop is small and built here (the first 300 Home Depot products, or a synthetic catalogue without the data
set) with an untuned search stack on the base MiniLM (no fine-tuning: the loading cost is what is measured,
not quality). Each command is a fresh process, timed from start to exit, median of R runs.

    python -m bench.cli_latency --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, table, write_json

QUERIES = ("cordless drill", "garden hose", "paint brush")


def build_shop(home: Path, n: int) -> str:
    from shoprank.bundles import publish
    from shoprank.data.records import Product
    from shoprank.search.stack import SearchStack, StackConfig, load_encoder
    from shoprank.shops import Shop

    words = ("drill", "hose", "brush", "ladder", "saw", "lamp", "faucet", "paint", "glove", "hammer")
    products = [Product(f"p{i}", f"{'cordless ' if i % 3 == 0 else ''}{words[i % 10]} model {i}",
                        category=f"Home > {words[i % 10].title()}", brand="acme", price=5.0 + i % 40,
                        in_stock=i % 11 != 0) for i in range(n)]
    shop = Shop("cli", home)
    with shop.store() as store:
        store.upsert_products(products)
        version = store.catalog_version()
    config = StackConfig()
    stack = SearchStack.build(products, load_encoder(config), config)
    with publish(shop.models_path, "search", {"catalog_version": version, "untuned": True}) as folder:
        stack.save(folder)
    return shop.name


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shoprank", *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"shoprank {' '.join(args)} failed: {done.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--products", type=int, default=300)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        shop = build_shop(home, args.products)
        base = ["--shop", shop, "--home", str(home)]
        local = [timed(["search", QUERIES[r % 3], *base, "--no-server"], env) for r in range(args.repeats)]
        port = "8765"
        server = subprocess.Popen([sys.executable, "-m", "shoprank", "serve", "--home", str(home), "--port", port,
                                   "--watch", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not (home / "server.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            timed(["search", "warm up", *base], env)  # the server loads the shop's engines on first use
            served = [timed(["search", QUERIES[r % 3], *base], env) for r in range(args.repeats)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = [["models loaded in the process (--no-server)", f"{median(local):.2f}", f"{min(local):.2f}"],
            ["a running 'shoprank serve' asked", f"{median(served):.2f}", f"{min(served):.2f}"]]
    print(table(["shoprank search, one call", "median s", "min s"], rows))
    path = write_json("cli_latency", {"products": args.products, "repeats": args.repeats,
                                      "local_seconds": local, "served_seconds": served})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
