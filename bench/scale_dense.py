"""The dense index a large catalogue gets, alone: FAISS build, memory and search cost past the HNSW threshold.

    python -m bench.scale_dense --products 250000 --home /tmp/scale-home

For sizes where the whole of ``bench.scale_catalogue`` does not fit the machine's time: the same composed
vectors (``bench.scale_corpus``; the parts' embeddings read from ``HOME/cache``, where a run of
``bench.scale_catalogue`` left them), indexed by the product's ``shoprank.retrieval.dense.DenseIndex`` with its
defaults (``HNSW_THRESHOLD``, ``HNSW_M``, ``EF_CONSTRUCTION``, ``EF_SEARCH`` there), timed building (wall
and CPU) and searched for ``--queries`` real Home Depot queries embedded by the served int8 ONNX query tower, one
thread: CPU time per search, Recall@100 against an exact scan, and the index's own memory per product. Writes
``bench/results/scale_dense.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scale_corpus as corpus_mod  # noqa: E402
from bench.common import table, write_json  # noqa: E402
from bench.index_memory import faiss_bytes  # noqa: E402
from bench.scale_catalogue import pct, real_queries  # noqa: E402


def run(n: int, home: Path, queries: int, threads: int, caches: list[Path]) -> dict[str, Any]:
    import faiss

    from shoprank.encoders import onnx_docs, onnx_tower
    from shoprank.encoders.text import default_model_path
    from shoprank.retrieval.dense import DenseIndex
    from shoprank.search.stack import StackConfig, load_encoder

    faiss.omp_set_num_threads(threads)
    corpus = corpus_mod.load_corpus()
    r = corpus_mod.recipe(corpus, n)
    encoder = load_encoder(StackConfig(encoder="biencoder", doc_max_length=corpus_mod.LENGTH))
    parts = corpus_mod.embed_parts(corpus, r, encoder, caches, home / "cache")
    # the weight bench.scale_catalogue chose on real embeddings (0.25 on its 100,000-product run)
    vectors = corpus_mod.compose(parts, r, 0.25)
    del parts
    began, cpu0 = time.perf_counter(), time.process_time()
    index = DenseIndex(vectors.shape[1]).build(vectors)
    index._ready()  # the FAISS index is made on first use: now, inside the timing
    build = {"seconds": time.perf_counter() - began, "cpu_seconds": time.process_time() - cpu0, "kind": index.kind,
             "threads": threads}
    held = faiss_bytes(index._ready(), index.vectors) if index._ready() is not None else {}  # no second count of
    # the numpy vectors where they are a view of FAISS's storage
    memory = {"numpy_vectors": int(index.vectors.nbytes), **{f"faiss_{k}": v for k, v in held.items()}}
    memory["bytes_per_product"] = sum(memory.values()) / n
    tower = onnx_tower.OnnxQueryTower.load(onnx_tower.cached_export(default_model_path(), onnx_docs.cache_root(),
                                                                    corpus_mod.LENGTH))
    texts = real_queries(queries)
    qv = np.concatenate([tower.encode_queries([q]) for q in texts]).astype(np.float32)
    faiss.omp_set_num_threads(1)  # ServingConfig.engine_threads
    wall, cpu, found = [], [], []
    for q in qv:
        t, c = time.perf_counter(), time.thread_time()
        rows, _ = index.search(q[None, :], 200)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        found.append(rows[0][:100])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(qv, 100)
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 100 for a, b in zip(found, truth, strict=True)]))
    return {"products": n, "build": build, "memory": memory,
            "search_top200": {"queries": len(qv), "wall_p50_ms": pct(wall, 50), "wall_p99_ms": pct(wall, 99),
                              "cpu_p50_ms": pct(cpu, 50), "cpu_p99_ms": pct(cpu, 99)},
            "recall_at_100_vs_exact": recall}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=250_000)
    parser.add_argument("--home", default="/tmp/scale-home", help="where bench.scale_catalogue cached the parts")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="threads for the build")
    parser.add_argument("--vector-cache", action="append", default=[], metavar="DIR",
                        help="as bench.scale_catalogue's: a shop's cache/ with the Home Depot titles' vectors")
    args = parser.parse_args(argv)
    result = run(args.products, Path(args.home), args.queries, args.threads, [Path(p) for p in args.vector_cache])
    b, m, s = result["build"], result["memory"], result["search_top200"]
    print(table(["measure", "value"], [
        ["products", f"{result['products']:,}"], ["index", b["kind"]],
        ["build", f"{b['seconds']:.0f} s wall, {b['cpu_seconds']:.0f} CPU s ({b['threads']} threads)"],
        *[[f"memory: {k}", f"{v / result['products']:,.0f} B per product"] for k, v in m.items()
          if k != "bytes_per_product"],
        ["memory: all", f"{m['bytes_per_product']:,.0f} B per product"],
        ["search top 200, one thread: CPU p50 / p99", f"{s['cpu_p50_ms']:.2f} / {s['cpu_p99_ms']:.2f} ms"],
        ["same, wall p50 / p99", f"{s['wall_p50_ms']:.2f} / {s['wall_p99_ms']:.2f} ms"],
        ["Recall@100 vs exact", f"{result['recall_at_100_vs_exact']:.4f}"]]))
    print(f"wrote {write_json('scale_dense', result)}")
    return result


if __name__ == "__main__":
    main()
