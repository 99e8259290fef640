"""What one question costs the answer matcher: MiniLM alone, the frozen E5 alone, and their blend.

    python -m bench.answer_latency                    # BANKING77, 5 questions an intent, 300 test questions
    python -m bench.answer_latency --questions 1000 --threads 1

Each matcher is trained as ``shoprank train answers --freeze all`` would (prototypes over the frozen encoder: a
fine-tuned MiniLM has the same architecture, so it costs the same to run), the blend is the two at equal
weights. Questions are matched one at a time (``match([question])``, what ``GET /shops/{shop}/answer`` asks
the matcher for), after a few warm-up calls; the table gives the median, p99 and mean of the wall time of
each call. The HTTP request, the search for products and the JSON are not in it. Writes
bench/results/answer_latency.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time

import numpy as np

from bench.answers import banking_entries
from bench.common import median, table, write_json
from shoprank.answers.intents import banking77
from shoprank.answers.model import BlendedMatcher
from shoprank.answers.train import AnswerTrainConfig, split_questions, train_matcher

WARM_UP = 5


def matchers(shots: int, seed: int) -> dict[str, object]:
    entries = banking_entries(shots, seed)
    config = AnswerTrainConfig(fine_tune=False, e5_weight=0.0, progress=False)
    ids, train, val = split_questions(entries, [], config)
    minilm, _ = train_matcher(ids, train, val, dataclasses.replace(config, encoder="minilm"))
    e5, _ = train_matcher(ids, train, val, dataclasses.replace(config, encoder="e5"))
    return {"minilm": minilm, "e5": e5, "blend (0.5 / 0.5)": BlendedMatcher([minilm, e5], [0.5, 0.5])}


def time_calls(matcher: object, questions: list[str]) -> list[float]:
    for q in questions[:WARM_UP]:
        matcher.match([q])  # type: ignore[attr-defined]
    out = []
    for q in questions:
        start = time.perf_counter()
        matcher.match([q])  # type: ignore[attr-defined]
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=300, help="test questions timed, one call each")
    parser.add_argument("--shots", type=int, default=5, help="training questions an intent")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    built = matchers(args.shots, args.seed)
    test_texts, _ = banking77("test")
    questions = random.Random(args.seed).sample(list(test_texts), min(args.questions, len(test_texts)))
    rows, results = [], {}
    for name, matcher in built.items():
        ms = time_calls(matcher, questions)
        stats = {"p50_ms": median(ms), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(np.mean(ms)),
                 "calls": len(ms)}
        results[name] = stats
        rows.append([name, f"{stats['p50_ms']:.1f}", f"{stats['p99_ms']:.1f}", f"{stats['mean_ms']:.1f}", len(ms)])
    print(table(["matcher", "p50 ms", "p99 ms", "mean ms", "calls"], rows))
    path = write_json("answer_latency", {"args": vars(args), "results": results,
                                         "seconds": time.perf_counter() - started})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
