"""A distilled (shallower) document tower: how much faster a catalogue is embedded, and what it costs.

    python -m bench.distil_tower --layers 0,5 --layers 0,2,5          # Home Depot, 54,667 products
    python -m bench.distil_tower --layers 0,5 --train-texts 500 --max-products 3000 --rounds 1   # a quick check

The teacher is the base model's document tower as the stack ships it (the fused int8 ONNX graph of
all-MiniLM-L6-v2, 32 tokens). Each student keeps the listed teacher layers and is trained by
:func:`shoprank.encoders.distil.distil_doc_tower` on ``--train-texts`` product titles sampled from the catalogue
(seed 0) to reproduce the teacher's vectors, then exported the same way (fused, int8). Measured side by side:

* throughput on a sample of ``--sample`` titles, each tower timed ``--rounds`` times in rotating order, the
  median kept, 2 threads (products/s of wall clock and per CPU-second times threads);
* every product of the catalogue embedded by each tower: cosine to the teacher (min, median, and the median over
  products the student never trained on);
* dense retrieval alone, full catalogue, on the **validation** queries of the training split (the test share
  held out first, as ``shoprank train search`` splits them; query vectors from the untuned float model for
  every row, so only the product side differs): NDCG@10 (gain = grade - 1) and Recall@100 of products graded
  >= 2.5. The test queries are not read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json
from bench.embedding import LENGTH, data_root, dense_quality, homedepot, validation_queries
from shoprank.encoders.distil import parse_layers


def teacher_vectors(encoder: Any, titles: list[str], cache: Path) -> tuple[np.ndarray, float | None]:
    """The teacher's vectors of every title (cached by the texts' hash) and its products/s when embedded here."""
    key = hashlib.sha1("\x1f".join(titles).encode()).hexdigest()[:16]
    path = cache / f"teacher-docs-{key}-L{LENGTH}.npy"
    if path.is_file():
        return np.load(path), None
    began = time.perf_counter()
    vectors = encoder.encode_docs(titles, progress=True)
    rate = len(titles) / (time.perf_counter() - began)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, rate


def throughput(towers: dict[str, Any], texts: list[str], rounds: int, threads: int) -> dict[str, dict[str, float]]:
    wall: dict[str, list[float]] = {n: [] for n in towers}
    cpu: dict[str, list[float]] = {n: [] for n in towers}
    names = list(towers)
    for tower in towers.values():
        tower.encode_docs(texts[:256])  # warm-up
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            began, began_cpu = time.perf_counter(), time.process_time()
            towers[name].encode_docs(texts)
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
            print(f"  round {r + 1}: {name}: {len(texts) / wall[name][-1]:.0f} products/s", flush=True)
    return {n: {"products_per_s": round(len(texts) / statistics.median(wall[n]), 1),
                "cpu_bound_products_per_s": round(len(texts) / statistics.median(cpu[n]) * threads, 1)}
            for n in names}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=parse_layers, action="append", default=None,
                        help="teacher layers a student keeps (repeat for several students); default 0,5")
    parser.add_argument("--train-texts", type=int, default=20_000, help="product titles each student trains on")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--sample", type=int, default=2000, help="titles in the throughput sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-products", type=int, default=None,
                        help="use only the first N products (a quick check; quality then covers fewer products)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="ONNX exports and the teacher's vectors (default $SHOPRANK_CACHE or ~/.cache/shoprank)")
    parser.add_argument("--students", type=Path, default=None,
                        help="where students are saved (default: a temp dir); one already there with the same "
                             "settings is measured again without training it again")
    parser.add_argument("--tag", default="", help="suffix of the results file")
    args = parser.parse_args(argv)
    if not (data_root() / "homedepot" / "products.csv").is_file():
        raise SystemExit(f"Home Depot data not found under {data_root()} (set SHOPRANK_DATA)")
    import logging

    import torch

    from shoprank.encoders import onnx_docs
    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.encoders.distil import DistilConfig, distil_doc_tower, read_report, sample_rows
    from shoprank.encoders.text import default_model_path
    from shoprank.training.loop import TrainConfig

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer logs every tensor at INFO
    torch.set_num_threads(args.threads)
    cache = args.cache or onnx_docs.cache_root()
    students_dir = args.students or Path(tempfile.mkdtemp(prefix="students-"))
    ids, titles, judged = homedepot()
    if args.max_products:
        ids, titles = ids[: args.max_products], titles[: args.max_products]
        keep = set(ids)
        judged = [j for j in judged if j[1] in keep]
    gains = validation_queries(judged)
    queries = sorted(gains)
    base = default_model_path()
    teacher = BiEncoder.load(None, max_length=LENGTH)
    query_vectors = teacher.encode_queries(queries)  # untuned float queries for every row
    print(f"teacher: embedding {len(titles):,} products (or reading them from {cache})", flush=True)
    reference, teacher_rate = teacher_vectors(teacher, titles, cache)
    teacher_export = onnx_docs.cached_export(base, cache, LENGTH)
    towers = {"teacher (6 layers, fused int8: shipped)": onnx_docs.OnnxDocTower.load(teacher_export, args.threads)}
    rows: list[dict[str, Any]] = [{"tower": next(iter(towers)), "layers": 6,
                                   "int8": onnx_docs.read_info(teacher_export).int8, "full_catalogue_products_per_s":
                                   None if teacher_rate is None else round(teacher_rate, 1), "cos_min": 1.0,
                                   "cos_median": 1.0, "cos_median_unseen": 1.0,
                                   **dense_quality(reference, query_vectors, queries, ids, gains)}]
    reports = {}
    for layers in args.layers or [(0, 5)]:
        name = f"student, layers {','.join(map(str, layers))}"
        folder = students_dir / f"student-{'-'.join(map(str, layers))}"
        config = DistilConfig(layers=layers, max_texts=args.train_texts, max_length=LENGTH,
                              train=TrainConfig(epochs=args.epochs, batch_size=64, learning_rate=args.learning_rate,
                                                dropout=0.0, warmup_ratio=0.05, patience=1))
        report = read_report(folder) if folder.is_dir() else None
        if report is not None and (report.texts + report.valid_texts != min(args.train_texts, len(titles)) or
                                   report.train != config.train.to_dict()):
            raise SystemExit(f"{folder} holds a student trained otherwise; remove it or pick other --students")
        if report is None:
            print(f"{name}: distilling on {min(args.train_texts, len(titles)):,} titles", flush=True)
            report = distil_doc_tower(base, titles, folder, config, teacher_vectors=reference)
        else:
            print(f"{name}: the student already in {folder} (same settings)", flush=True)
        reports[name] = report.__dict__
        print(f"  validation cosine {report.cosine_before:.4f} -> {report.cosine:.4f} in {report.seconds:.0f} s")
        export = onnx_docs.cached_export(folder, cache, LENGTH)
        tower = onnx_docs.OnnxDocTower.load(export, args.threads)
        towers[name] = tower
        began = time.perf_counter()
        vectors = tower.encode_docs(titles, progress=True)
        rate = len(titles) / (time.perf_counter() - began)
        cos = np.sum(vectors * reference, axis=1)
        seen = np.zeros(len(titles), bool)
        seen[[r for part in sample_rows(len(titles), config) for r in part]] = True  # validation rows count too
        rows.append({"tower": name, "layers": len(layers), "int8": onnx_docs.read_info(export).int8,
                     "full_catalogue_products_per_s": round(rate, 1),
                     "cos_min": round(float(cos.min()), 4), "cos_median": round(float(np.median(cos)), 4),
                     "cos_median_unseen": round(float(np.median(cos[~seen])), 4) if (~seen).any() else None,
                     **dense_quality(vectors, query_vectors, queries, ids, gains)})
    sample = random.Random(0).sample(titles, min(args.sample, len(titles)))
    print(f"throughput: {len(sample):,} titles, {args.rounds} rounds, {args.threads} threads", flush=True)
    speed = throughput(towers, sample, args.rounds, args.threads)
    for row in rows:
        row.update(speed[row["tower"]])
    print(table(["tower", "layers", "int8", "products/s (sample)", "CPU-bound /s", "products/s (whole catalogue)",
                 "cos min", "cos median", "cos median, unseen", "valid NDCG@10", "valid Recall@100", "queries"],
                [[r["tower"], r["layers"], r["int8"], r["products_per_s"], r["cpu_bound_products_per_s"],
                  r["full_catalogue_products_per_s"], r["cos_min"], r["cos_median"], r["cos_median_unseen"],
                  r["ndcg@10"], r["recall@100"], r["queries"]] for r in rows]))
    out = {"products": len(titles), "length": LENGTH, "threads": args.threads, "rows": rows, "distillation": reports,
           "load_average": os.getloadavg()}
    path = write_json("distil_tower" + args.tag, out)
    print(f"results: {path}")
    return out


if __name__ == "__main__":
    main()
