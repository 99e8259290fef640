"""Sentiment commands: ``train sentiment``, ``run sentiment``, ``alerts``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError, add_shop, existing_shop


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    train = groups["train"].add_parser(
        "sentiment", help="a three-class review sentiment model (negative, neutral, positive) from the shop's reviews")
    add_shop(train)
    train.add_argument("--labels", default=None, metavar="FILE",
                       help="CSV review_id,label (negative/neutral/positive) instead of labels from the ratings")
    train.add_argument("--methods", default="tfidf,frozen,e5,fine-tuned-stars",
                       help="candidates to fit (tfidf, frozen, e5, fine-tuned: a three-way head, fine-tuned-stars: "
                       "a head over the star ratings, the three-way one where reviews lack ratings); the best on "
                       "validation ships")
    train.add_argument("--language", choices=["auto", "en", "zh"], default="auto")
    train.add_argument("--max-length", type=int, default=128, help="tokens per review (default 128)")
    train.add_argument("--train-limit", type=int, default=20_000,
                       help="reviews the fine-tuned model sees, a stratified sample (default 20000: about 13 "
                            "minutes on 2 cores)")
    train.add_argument("--head-limit", type=int, default=6000, help="reviews the frozen-encoder heads see")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--learning-rate", type=float, default=8e-5)
    train.add_argument("--freeze", choices=["none", "lower", "all"], default="none")
    train.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                       help="what the fine-tuned head reads: the mean of the token vectors (default) or [CLS]")
    train.add_argument("--class-weight", choices=["balanced", "none"], default="balanced",
                       help="weigh the fine-tuning loss by inverse class frequency (default) or not")
    train.add_argument("--eval-every", type=int, default=0, metavar="STEPS")
    train.add_argument("--base-model", default=None, help="a local Hugging Face folder (default all-MiniLM-L6-v2)")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(handler=cmd_train)

    run = groups["run"].add_parser("sentiment", help="label a CSV of texts (id,text) -> id,label,score")
    add_shop(run)
    run.add_argument("--texts", required=True, help="CSV with columns id,text")
    run.add_argument("--out", required=True, help="CSV written with id,label,score (score = P(pos) - P(neg))")
    run.set_defaults(handler=cmd_run)

    alerts = groups[""].add_parser("alerts", help="surges of negative reviews per product, category and topic")
    add_shop(alerts)
    alerts.add_argument("--json", action="store_true", help="one JSON list")
    alerts.add_argument("--scope", default=None, help="only this scope, e.g. product:ID")
    alerts.add_argument("--limit", type=int, default=100)
    alerts.add_argument("--webhook", default=None, metavar="URL",
                        help="set the shop's webhook URL for new alerts ('none' removes it)")
    alerts.add_argument("--no-deliver", action="store_true", help="do not post new alerts to the webhook")
    alerts.set_defaults(handler=cmd_alerts)


def _shop(args: argparse.Namespace) -> Any:
    return existing_shop(args, f"ingest its reviews first (shoprank ingest reviews FILE --shop {args.shop})")


def cmd_train(args: argparse.Namespace) -> int:
    from shoprank.sentiment.service import read_labels, train_shop
    from shoprank.sentiment.train import SentimentConfig

    shop = _shop(args)
    config = SentimentConfig(methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
                             language=args.language, max_length=args.max_length, train_limit=args.train_limit,
                             head_limit=args.head_limit, epochs=args.epochs, learning_rate=args.learning_rate,
                             freeze=args.freeze, eval_every=args.eval_every, pooling=args.pooling,
                             class_weight=args.class_weight)
    labels = read_labels(Path(args.labels)) if args.labels else None
    start = time.perf_counter()
    with shop.store() as store:
        published = train_shop(store, shop.models_path, config, labels=labels, progress=not args.quiet,
                               base_model=args.base_model)
    took = time.perf_counter() - start
    model = published.result.model
    print(f"sentiment model for shop '{shop.name}' ({model.language}): {model.name}")
    print(f"  trained on {published.train_reviews:,} reviews, validated on the latest {published.valid_reviews:,} "
          f"(subsamples: --train-limit {args.train_limit}, --head-limit {args.head_limit}) in {took:.0f} s")
    for row in sorted(published.result.validation, key=lambda r: -r["valid_macro_f1"])[:6]:
        print(f"  validation macro-F1 {row['valid_macro_f1']:.4f}  {row['model']}")
    print(f"  published bundle sentiment/{published.version}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from shoprank.sentiment.service import load_published

    shop = _shop(args)
    published = load_published(shop.models_path)
    if published is None:
        raise CommandError(f"shop '{shop.name}' has no sentiment model; run 'shoprank train sentiment --shop "
                           f"{shop.name}' first")
    model, version = published
    ids, texts = [], []
    with Path(args.texts).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id", "text"} <= set(reader.fieldnames):
            raise CommandError(f"{args.texts}: needs the columns id,text (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            if not (row["id"] or "").strip():
                raise CommandError(f"{args.texts} line {line}: field 'id' is empty")
            ids.append(row["id"].strip())
            texts.append((row["text"] or "")[:20_000])
    prediction = model.predict(texts, progress=sys.stderr.isatty())
    with Path(args.out).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "score"])
        for i, label, score in zip(ids, prediction.labels, prediction.scores, strict=True):
            writer.writerow([i, label, f"{score:.4f}"])
    print(f"labelled {len(ids):,} texts with sentiment/{version} -> {args.out}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from shoprank.sentiment.service import WEBHOOK_SETTING, ShopSentiment
    from shoprank.sentiment.webhook import WebhookConfig, deliver_new

    shop = _shop(args)
    with shop.store() as store:
        if args.webhook is not None:
            value = None if args.webhook.lower() == "none" else WebhookConfig(args.webhook).url
            store.set_setting(WEBHOOK_SETTING, value)
            print(f"webhook for shop '{shop.name}': {value or 'none'}", file=sys.stderr)
        new = ShopSentiment(store, shop.models_path).refresh_alerts()
        if new and not args.no_deliver:
            deliver_new(store, new)
        alerts = store.list_alerts(args.limit, args.scope)
    if args.json:
        print(json.dumps(alerts, indent=2, ensure_ascii=False))
        return 0
    if not alerts:
        print(f"no alerts for shop '{shop.name}'")
    for a in alerts:
        print(f"{a['at'][:16]}  {a['scope']:30}  negative {a['negative_share']:.0%} (baseline "
              f"{a['baseline_share']:.0%}, {a['negatives']}/{a['reviews']} reviews, p={a['p_value']:.1e})"
              f"{'  delivered' if a['delivered'] else ''}")
    return 0
