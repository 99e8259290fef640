"""Catalogue embedding on Ray against in-process, and its projection to 10 million products (``bench.scale``'s
``--part ray``; also ``python -m bench.scale_ray``).

The base MiniLM document tower (``--max-length`` tokens) embeds ``--products`` synthetic product texts:

* in-process, PyTorch with 1 thread and with 2 threads (what ``train search`` does without ``--workers``);
* on a local Ray cluster through Ray Data ``map_batches``, 1 and 2 actors of 1 CPU and 1 thread each
  (``--workers 1`` / ``--workers 2``), the cluster started once before (its start-up is reported apart).

Each configuration runs at two sizes (``--products`` and a quarter of it); the fit ``time = fixed + n * cost``
separates the fixed part (actors starting, the model loading in each) from the per-product cost. The projection
to 10,000,000 products on N workers is ``fixed + 10M * cost_1 / N``, with ``cost_1`` the per-product cost of one
worker measured here. Its assumptions: every worker has a core of this machine's speed to itself (here two
workers share two cores with other work, so the 2-worker figure is a floor of what a free machine gives);
the work is embarrassingly parallel (no shared state; measured: throughput with 2 workers against 1); the
vectors stream out to the index as they come (10M x 384 float32 is 15 GB, more than a default object store
holds at once); the texts are read by Ray Data from files (``read_parquet``) rather than shipped from the
driver as here.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from bench.common import table, write_json

TARGET = 10_000_000
WORDS = ["cordless", "drill", "garden", "hose", "stainless", "steel", "kettle", "led", "bulb", "oak", "table",
         "chair", "red", "blue", "16 oz", "pack of 4", "outdoor", "kitchen", "bathroom", "faucet", "ladder"]


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 16)))) + f" model {i}" for i in range(n)]


def in_process(items: list[str], max_length: int, threads: int) -> float:
    import torch

    from shoprank.encoders.biencoder import BiEncoder

    torch.set_num_threads(threads)
    began = time.perf_counter()
    BiEncoder.load(None, max_length=max_length).encode_docs(items)
    return time.perf_counter() - began


def on_ray(items: list[str], max_length: int, workers: int) -> float:
    from shoprank.cluster import RayConfig
    from shoprank.cluster.embedding import EncoderSpec, embed_on_ray

    began = time.perf_counter()
    embed_on_ray(items, EncoderSpec("docs", None, max_length), RayConfig(workers=workers), batch_size=128)
    return time.perf_counter() - began


def fit_line(sizes: list[int], seconds: list[float]) -> tuple[float, float]:
    """(fixed seconds, seconds per product) of the line through the two measurements."""
    (n0, n1), (t0, t1) = sizes, seconds
    cost = (t1 - t0) / (n1 - n0)
    return max(0.0, t0 - cost * n0), cost


def run(products: int, max_length: int) -> dict[str, Any]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    sizes = [max(64, products // 4), products]
    corpus = texts(products)
    rows: dict[str, Any] = {}
    for threads in (1, 2):
        seconds = [in_process(corpus[:n], max_length, threads) for n in sizes]
        rows[f"in-process, {threads} thread{'s' if threads > 1 else ''}"] = {"workers": None, "seconds": seconds}
        print(f"in-process {threads} threads: {seconds}", flush=True)
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    startup = time.perf_counter() - began
    try:
        for workers in (1, 2):
            seconds = [on_ray(corpus[:n], max_length, workers) for n in sizes]
            rows[f"Ray Data, {workers} worker{'s' if workers > 1 else ''}"] = {"workers": workers, "seconds": seconds}
            print(f"ray {workers} workers: {seconds}", flush=True)
    finally:
        ray.shutdown()
    for row in rows.values():
        row["products_per_s"] = sizes[1] / row["seconds"][1]
        row["fixed_s"], row["cost_s_per_product"] = fit_line(sizes, row["seconds"])
    one = rows["Ray Data, 1 worker"]
    projection = {n: (one["fixed_s"] + TARGET * one["cost_s_per_product"] / n) / 3600 for n in (1, 2, 8, 32, 128)}
    return {"products": sizes, "max_length": max_length, "ray_startup_s": startup, "configs": rows,
            "projection_hours_10M": projection,
            "speedup_2_over_1_workers": rows["Ray Data, 2 workers"]["products_per_s"] / one["products_per_s"]}


def report(results: dict[str, Any]) -> None:
    n = results["products"][1]
    print(table(["configuration", f"products/s ({n:,} products, {results['max_length']} tokens)",
                 "fixed part (s)", "ms per product"],
                [[name, f"{r['products_per_s']:.1f}", f"{r['fixed_s']:.1f}", f"{1000 * r['cost_s_per_product']:.2f}"]
                 for name, r in results["configs"].items()]))
    print(f"Ray cluster start-up (once per job): {results['ray_startup_s']:.1f} s; 2 workers / 1 worker throughput: "
          f"{results['speedup_2_over_1_workers']:.2f}x")
    print(table(["workers (1 core each)", "10M products, projected hours"],
                [[w, f"{h:.1f}"] for w, h in results["projection_hours_10M"].items()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=32)
    args = parser.parse_args()
    results = run(args.products, args.max_length)
    report(results)
    print(f"written to {write_json('scale_ray', results)}")


if __name__ == "__main__":
    main()
