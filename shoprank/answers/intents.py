"""Public intent sets as labelled questions: BANKING77 and CLINC150 (read where they lie, never copied).

They help a shop's matcher in two ways (``shoprank train answers --intent-sets``): a warm-up pass that
teaches the encoder what separates customer intents, and CLINC150's out-of-scope questions as examples of
what a hand-over looks like when the shop has no unanswered conversations of its own.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from shoprank.answers.train import LabelledQuestions

INTENT_SETS = ("banking77", "clinc150")
PUBLISHED = {
    "banking77": "https://github.com/PolyAI-LDN/task-specific-datasets (CC BY 4.0)",
    "clinc150": "https://github.com/clinc/oos-eval (CC BY 3.0)",
}


def _root(root: str | Path | None) -> Path:
    from shoprank.datasets.base import data_root

    return Path(root) if root is not None else data_root()


def _folder(name: str, root: str | Path | None) -> Path:
    if name not in INTENT_SETS:
        raise ValueError(f"unknown intent set {name!r}; valid sets: {', '.join(INTENT_SETS)}")
    folder = _root(root) / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: put the {name} files there (published at "
                                f"{PUBLISHED[name]}) or point $SHOPRANK_DATA at their parent folder")
    return folder


def banking77(part: str = "train", root: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(questions, intents) of ``train`` or ``test``."""
    with (_folder("banking77", root) / f"{part}.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def clinc150(part: str = "train", root: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(questions, intents) of ``train``, ``val``, ``test``, ``oos_train``, ``oos_val`` or ``oos_test``."""
    data = json.loads((_folder("clinc150", root) / "data_full.json").read_text(encoding="utf-8"))
    return [t for t, _ in data[part]], [i for _, i in data[part]]


def load_questions(name: str, part: str = "train", root: str | Path | None = None) -> tuple[list[str], list[str]]:
    return banking77(part, root) if name == "banking77" else clinc150(part, root)


def as_labelled(texts: list[str], intents: list[str], names: list[str] | None = None
                ) -> tuple[list[str], LabelledQuestions]:
    """Intent names -> indices (in ``names`` order, or first-seen order)."""
    names = names or list(dict.fromkeys(intents))
    index = {n: i for i, n in enumerate(names)}
    return names, LabelledQuestions(list(texts), [index[i] for i in intents])


def warmup_questions(sets: list[str], per_intent: int = 30, seed: int = 0, root: str | Path | None = None
                     ) -> LabelledQuestions:
    """Up to ``per_intent`` training questions of every intent of the named sets, one label space."""
    rng = random.Random(seed)
    texts: list[str] = []
    intents: list[str] = []
    for name in sets:
        q, i = load_questions(name, "train", root)
        by_intent: dict[str, list[str]] = {}
        for text, intent in zip(q, i, strict=True):
            by_intent.setdefault(f"{name}:{intent}", []).append(text)
        for intent, questions in by_intent.items():
            rng.shuffle(questions)
            for text in questions[:per_intent]:
                texts.append(text)
                intents.append(intent)
    return as_labelled(texts, intents)[1]


def out_of_scope_questions(root: str | Path | None = None) -> list[str]:
    """CLINC150's out-of-scope training and validation questions (never its test ones)."""
    return clinc150("oos_train", root)[0] + clinc150("oos_val", root)[0]
