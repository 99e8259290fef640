"""Answers commands: ``ingest faq|conversations``, ``train answers``, ``run answer``, ``answer``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from shoprank.cli.main import CommandError, add_shop

INGEST_KINDS = ("faq", "conversations")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    _extend_ingest(groups[""])
    train = groups["train"].add_parser(
        "answers", help="fine-tune the answer matcher on the shop's FAQ and past conversations, and publish it")
    add_shop(train)
    train.add_argument("--encoder", choices=["auto", "minilm", "e5"], default="auto",
                       help="minilm: fine-tuned all-MiniLM-L6-v2; e5: the frozen multilingual E5 (Chinese); "
                            "auto (default): e5 when most questions are Chinese, Japanese or Korean")
    train.add_argument("--epochs", type=int, default=4, help="at most this many epochs (early stopping)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=8e-5, help="peak learning rate of the encoder")
    train.add_argument("--freeze", choices=["none", "lower", "all"], default="none",
                       help="none: fine-tune every layer; lower: freeze the lower half; all: prototypes only")
    train.add_argument("--intent-sets", default="", metavar="SETS",
                       help="warm the encoder up on public intent sets first, e.g. clinc150 or clinc150,banking77 "
                            "(read from $SHOPRANK_DATA); clinc150 also lends its out-of-scope questions to the "
                            "hand-over threshold when the shop has no unanswered conversations")
    train.add_argument("--oos-share", type=float, default=0.2,
                       help="the share of questions you expect the FAQ not to cover (default 0.2): the hand-over "
                            "threshold is chosen on validation for it")
    train.add_argument("--max-handoff", type=float, default=0.05,
                       help="without out-of-scope examples: share of answerable validation questions handed over")
    train.add_argument("--no-refit", action="store_true",
                       help="serve the model validation chose from; default: train it again on every question "
                            "(validation's too) for the epochs validation chose, up to 5,000 questions")
    train.add_argument("--no-answer-examples", action="store_true",
                       help="do not train on each entry's answer text as one more of its questions")
    train.add_argument("--e5-weight", type=float, default=0.5,
                       help="small FAQs read by MiniLM (up to 20 questions an entry on average): try a blend "
                            "with a frozen-E5 matcher, E5 at this weight in [0, 1) (default 0.5; 0: MiniLM "
                            "alone), served only where its validation accuracy beats MiniLM's")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=cmd_train)

    run = groups["run"].add_parser("answer", help="answer a CSV of questions (qid,question) into a CSV "
                                   "(qid,faq_id,confidence,handoff)")
    add_shop(run)
    run.add_argument("--questions", required=True, metavar="FILE.csv")
    run.add_argument("--out", required=True, metavar="FILE.csv")
    run.set_defaults(handler=cmd_run)

    ask = groups[""].add_parser("answer", help="the FAQ answer for one question (or a hand-over)")
    ask.add_argument("question")
    add_shop(ask)
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(handler=cmd_answer)


def _extend_ingest(verbs: argparse._SubParsersAction) -> None:
    """``shoprank ingest faq FILE`` and ``shoprank ingest conversations FILE`` beside the other kinds."""
    ingest = verbs.choices.get("ingest")
    if ingest is None:
        return
    for action in ingest._actions:
        if action.dest == "kind" and action.choices is not None:
            action.choices = [*action.choices, *INGEST_KINDS]
    ingest.add_argument("--merge", action="store_true",
                        help="faq: merge the file's entries into the FAQ by id (default: the file becomes the FAQ)")
    other = ingest.get_default("handler")

    def dispatch(args: argparse.Namespace) -> int:
        return cmd_ingest(args) if args.kind in INGEST_KINDS else other(args)

    ingest.set_defaults(handler=dispatch)


def cmd_ingest(args: argparse.Namespace) -> int:
    from shoprank.answers.ingest import ingest_conversations, ingest_faq
    from shoprank.data.ingest import IngestError
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    start = time.perf_counter()
    with shop.store() as store:
        try:
            if args.kind == "faq":
                result = ingest_faq(store, args.file, replace=not args.merge, fmt=args.format)
            else:
                result = ingest_conversations(store, args.file, fmt=args.format)
        except IngestError as exc:
            raise CommandError(str(exc)) from None
        total = len(store.faq_entries()) if args.kind == "faq" else len(store.conversations())
    took = time.perf_counter() - start
    if args.kind == "faq":
        print(f"FAQ of shop '{shop.name}': {result.stored} new, {result.updated} updated, {result.removed} removed "
              f"entries; {total} in all ({took:.1f} s)")
    else:
        print(f"conversations of shop '{shop.name}': {result.stored} stored, {result.duplicates} duplicates; "
              f"{total} in all ({took:.1f} s)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from shoprank.answers.engine import publish_answers
    from shoprank.answers.train import AnswerTrainConfig
    from shoprank.shops import Shop
    from shoprank.training.loop import TrainConfig

    shop = Shop(args.shop, args.home)
    if not shop.exists():
        raise CommandError(f"shop '{shop.name}' does not exist; ingest its FAQ first: "
                           f"shoprank ingest faq FILE --shop {shop.name}")
    sets = [s.strip() for s in args.intent_sets.split(",") if s.strip()]
    config = AnswerTrainConfig(
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, patience=1,
                          freeze=args.freeze, seed=args.seed),
        encoder=args.encoder, fine_tune=args.freeze != "all", oos_share=args.oos_share, max_handoff=args.max_handoff,
        refit=not args.no_refit, answer_as_question=not args.no_answer_examples, e5_weight=args.e5_weight,
        progress=not args.quiet)
    _limit_threads()
    start = time.perf_counter()
    version, report = publish_answers(shop, config, sets)
    took = time.perf_counter() - start
    val = report.val
    print(f"answers model {version} published for shop '{shop.name}' in {took:.0f} s")
    print(f"  encoder {report.encoder}; {report.entries} entries; {report.train_questions} training and "
          f"{report.val_questions} validation questions, {report.val_out_of_scope} out-of-scope examples"
          + (f" (and {report.reject_questions} more that trained the 'none of these' prototype)"
             if report.reject_questions else ""))
    if "val_accuracy" in val:
        print(f"  validation accuracy {val['val_accuracy']:.3f}; temperature {report.temperature:.2f}; "
              f"hand-over below confidence {report.threshold:.3f}")
        if "val_oos_recall" in val:
            print(f"  on validation: {val['val_answered_correctly']:.3f} answered correctly, "
                  f"{val['val_oos_recall']:.3f} of out-of-scope questions handed over")
        elif "val_handoff_in_scope" in val:
            print(f"  no out-of-scope examples: the threshold hands over {val['val_handoff_in_scope']:.3f} of "
                  "answerable validation questions (add unanswered conversations, or --intent-sets clinc150)")
        if report.blend:
            alone = {name: v.get("val_accuracy", 0.0) for name, v in report.blend["val"].items()}
            print(("  blended with the frozen E5" if report.blend["kept"] else "  not blended with the frozen E5")
                  + f": validation accuracy MiniLM {alone['minilm']:.3f}, E5 {alone['e5']:.3f}, "
                  f"the blend {alone['blend']:.3f}")
        refit = report.refit
        if refit:
            print(f"  then trained again on all {refit['refit_questions']} questions (validation's too)"
                  + (f" for {refit['refit_epochs']} epochs, as validation chose" if "refit_epochs" in refit else ""))
    else:
        print("  no validation questions (entries need 3+ questions): temperature 1, no hand-over threshold")
    return 0


def _limit_threads() -> None:
    import os

    import torch

    torch.set_num_threads(max(1, min(int(os.environ.get("SHOPRANK_THREADS", "2")), os.cpu_count() or 1)))


def _engine(args: argparse.Namespace) -> tuple[Any, Any]:
    from shoprank.answers.engine import VALUES_SETTING, AnswerEngine
    from shoprank.bundles import BundleError
    from shoprank.shops import Shop

    shop = Shop(args.shop, args.home)
    try:
        engine = AnswerEngine.load(shop)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    with shop.store(create=False) as store:
        current = {e.id: e for e in store.faq_entries()}
        values = store.get_setting(VALUES_SETTING, {}) or {}
    return engine, (current, values)


def cmd_answer(args: argparse.Namespace) -> int:
    engine, (current, values) = _engine(args)
    answer = engine.answer([args.question], current=current, values=values)[0]
    if args.json:
        print(json.dumps(answer.payload(), ensure_ascii=False, indent=2))
    elif answer.handoff:
        print(f"hand over to a person (best confidence {answer.confidence:.3f})")
    else:
        print(f"[{answer.faq_id}] ({answer.confidence:.3f}) {answer.text}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    path = Path(args.questions)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"qid", "question"} <= set(reader.fieldnames):
            raise CommandError(f"{path} needs the columns qid,question (found: {', '.join(reader.fieldnames or [])})")
        rows = list(reader)
    bad = [i + 2 for i, r in enumerate(rows) if not (r.get("qid") or "").strip()]
    if bad:
        raise CommandError(f"{path}: line {bad[0]}: field 'qid' is required")
    engine, (current, values) = _engine(args)
    with Path(args.out).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["qid", "faq_id", "confidence", "handoff"])
        for start in tqdm(range(0, len(rows), 256), desc="answering", disable=not sys.stderr.isatty()):
            batch = rows[start : start + 256]
            for row, answer in zip(batch, engine.answer([r["question"] or "" for r in batch], current=current,
                                                        values=values), strict=True):
                writer.writerow([row["qid"], answer.faq_id or "", f"{answer.confidence:.6f}",
                                 "true" if answer.handoff else "false"])
    print(f"answered {len(rows)} questions into {args.out}")
    return 0
