"""Memory per product of each index a shop's served engines hold, and the process's resident growth on load.

    python -m bench.index_memory --home H --shop homedepot [--kind search|recommend]

Loads the shop's latest bundle as the server does (``shoprank.serving.registry`` loaders), then walks the
engine's objects (attributes, lists, dicts; each array counted once) and sums the bytes of every numpy array and
scipy sparse matrix under each top-level component (memory-mapped arrays count in full: mapped, resident once
touched) (``stack.dense``, ``stack.bm25``, ...), plus the FAISS index's own memory, which the walk cannot see:
its vector storage unless the dense index's numpy vectors are a view of it (then the walk counted them once) and,
for HNSW, its graph. Python objects that
are not arrays (id lists, dicts of titles) are not counted by the walk; the resident-set growth of the process
while loading is printed beside it as the upper bound. Writes bench/results/index_memory.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_json  # noqa: E402

MAX_DEPTH = 6


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def ndarray_bytes(array: np.ndarray, seen: set[int]) -> int:
    """Bytes of the buffer under ``array`` (its root array when it is a view), 0 when that buffer was counted."""
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    key = id(root.base) if root.base is not None else id(root)  # arrays over one mmap or bytes share it
    if key in seen:
        return 0
    seen.add(key)
    return int(root.nbytes)


def array_bytes(value: Any, seen: set[int]) -> int | None:
    """Bytes held by a numpy array or a scipy sparse matrix (its data and index arrays); None for anything else."""
    if isinstance(value, np.ndarray):
        return ndarray_bytes(value, seen)
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return None
    if sp.issparse(value):
        return sum(ndarray_bytes(getattr(value, name), seen) for name in ("data", "indices", "indptr", "row", "col")
                   if isinstance(getattr(value, name, None), np.ndarray))
    return None


def walk(value: Any, seen: set[int], depth: int = 0) -> int:
    """Bytes of every array reachable from ``value`` not seen before."""
    if id(value) in seen or depth > MAX_DEPTH or isinstance(value, str | bytes | int | float | type):
        return 0
    seen.add(id(value))
    counted = array_bytes(value, seen)
    if counted is not None:
        return counted
    if isinstance(value, dict):
        return sum(walk(v, seen, depth + 1) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return sum(walk(v, seen, depth + 1) for v in list(value)[:100_000])
    fields = getattr(value, "__dict__", None)
    if fields is None and hasattr(value, "__slots__"):
        fields = {name: getattr(value, name) for name in value.__slots__ if hasattr(value, name)}
    if not fields:
        return 0
    if type(value).__module__.split(".")[0] in ("torch", "onnxruntime", "transformers", "tokenizers"):
        return 0  # model weights are not an index: counted by the resident growth only
    return sum(walk(v, seen, depth + 1) for v in fields.values())


def faiss_bytes(index: Any, numpy_vectors: np.ndarray | None = None) -> dict[str, int]:
    """What a FAISS index holds in its own memory, which the array walk cannot see: its vector storage (left out
    when ``numpy_vectors``, counted by the walk, is a view of that storage) and, for HNSW, its graph."""
    import faiss

    index = faiss.downcast_index(index)
    out: dict[str, int] = {}
    if isinstance(index, faiss.IndexHNSW):
        hnsw = index.hnsw
        out["graph"] = int(hnsw.neighbors.size() * 4 + hnsw.levels.size() * 4 + hnsw.offsets.size() * 8 +
                           hnsw.assign_probas.size() * 8 + hnsw.cum_nneighbor_per_level.size() * 4)
        storage = faiss.downcast_index(index.storage)
    else:
        storage = index
    if not (numpy_vectors is not None and storage.ntotal and len(numpy_vectors) and
            numpy_vectors.__array_interface__["data"][0] == int(storage.get_xb())):
        out["vectors"] = int(storage.ntotal) * int(getattr(storage, "code_size", storage.d * 4))
    return out


def dense_index_rows(engine: Any) -> list[tuple[str, int]]:
    """(component, bytes) of the FAISS index under a search engine's ``stack.dense``, if it has one (an exact
    index may have none: it scans its numpy vectors)."""
    dense = getattr(getattr(engine, "stack", None), "dense", None)
    if dense is None:
        return []
    ready = getattr(dense, "_ready", None)  # an index made on first use: made now, as the first search would
    index = ready() if ready is not None else getattr(dense, "_index", None)
    if index is None:
        return []
    return [(f"stack.dense FAISS {dense.kind} index: {part}", size)
            for part, size in faiss_bytes(index, dense.vectors).items()]


def components(engine: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Top-level parts worth a row: attributes of the engine, one level into a 'stack' if it has one."""
    out: dict[str, Any] = {}
    fields = {k: v for k, v in vars(engine).items() if not k.startswith("__")}
    inner = [k for k in ("art", "stack", "artifacts") if depth == 0 and hasattr(fields.get(k), "__dict__")]
    for name in inner:  # the bundle's own arrays first, so they are named by what holds them
        out.update(components(fields[name], f"{prefix}{name}.", depth + 1))
    out.update({prefix + k: v for k, v in fields.items() if k not in inner})
    return out


def measure(home: Path, shop_name: str, kind: str) -> dict[str, Any]:
    from shoprank.serving.registry import load_recommender, load_search
    from shoprank.shops import Shop

    shop = Shop(shop_name, home)
    with shop.store(create=False) as store:
        products = store.product_count()
    before = rss_bytes()
    started = time.perf_counter()
    engine = (load_search if kind == "search" else load_recommender)(shop)
    load_s = time.perf_counter() - started
    grown = rss_bytes() - before
    seen: set[int] = set()
    rows = []
    for name, value in components(engine).items():
        size = walk(value, seen)
        if size:
            rows.append({"component": name, "bytes": size, "bytes_per_product": size / max(products, 1)})
    for name, size in dense_index_rows(engine):
        rows.append({"component": name, "bytes": size, "bytes_per_product": size / max(products, 1)})
    rows.sort(key=lambda r: -r["bytes"])
    total = sum(r["bytes"] for r in rows)
    return {"shop": shop_name, "kind": kind, "products": products, "rows": rows, "array_bytes": total,
            "array_bytes_per_product": total / max(products, 1), "rss_growth_bytes": grown,
            "rss_growth_per_product": grown / max(products, 1), "load_s": load_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--shop", required=True)
    parser.add_argument("--kind", choices=("search", "recommend"), default="search")
    args = parser.parse_args(argv)
    result = measure(args.home, args.shop, args.kind)
    print(f"shop {result['shop']} ({result['products']:,} products), {result['kind']} engine loaded in "
          f"{result['load_s']:.1f} s")
    body = [[r["component"], f"{r['bytes'] / 2**20:,.1f}", f"{r['bytes_per_product']:,.0f}"] for r in result["rows"]]
    body.append(["all arrays", f"{result['array_bytes'] / 2**20:,.1f}", f"{result['array_bytes_per_product']:,.0f}"])
    body.append(["resident growth on load (arrays, models, Python objects)",
                 f"{result['rss_growth_bytes'] / 2**20:,.1f}", f"{result['rss_growth_per_product']:,.0f}"])
    print(table(["component", "MiB", "bytes per product"], body))
    print(f"wrote {write_json(f'index_memory_{args.kind}', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
