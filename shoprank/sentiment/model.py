"""The shipped sentiment model: one scorer, or a weighted blend of two, plus the decision offsets.

Saved as a folder: ``sentiment.json`` (members, weights, offsets, language, format version) and one
sub-folder of plain files per member.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shoprank.sentiment.decision import decide
from shoprank.sentiment.labels import LABELS, polarity

FORMAT = 1
KINDS = ("tfidf-lr", "frozen-lr", "fine-tuned")


class Scorer(Protocol):
    name: str

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


def kind_of(scorer: Scorer) -> str:
    from shoprank.sentiment.classifier import FineTunedClassifier
    from shoprank.sentiment.linear import EmbeddingLogistic, TfidfLogistic

    if isinstance(scorer, TfidfLogistic):
        return "tfidf-lr"
    if isinstance(scorer, EmbeddingLogistic):
        return "frozen-lr"
    if isinstance(scorer, FineTunedClassifier):
        return "fine-tuned"
    raise TypeError(f"not a sentiment scorer: {type(scorer).__name__}")


def load_member(kind: str, folder: Path, params: dict[str, Any]) -> Scorer:
    from shoprank.sentiment.classifier import FineTunedClassifier
    from shoprank.sentiment.linear import EmbeddingLogistic, TfidfLogistic

    if kind == "tfidf-lr":
        return TfidfLogistic.load(folder)
    if kind == "frozen-lr":
        return EmbeddingLogistic.load(folder)
    if kind == "fine-tuned":
        return FineTunedClassifier.load(folder, int(params.get("max_length", 128)), params.get("classes", (0, 1, 2)),
                                        params.get("pooling", "cls"))
    raise ValueError(f"unknown sentiment member kind {kind!r}; valid kinds: {', '.join(KINDS)}")


@dataclass
class Prediction:
    labels: list[str]
    scores: np.ndarray  # P(positive) - P(negative), (n,)
    probabilities: np.ndarray  # (n, 3)


@dataclass
class SentimentModel:
    members: list[Scorer]
    weights: list[float]
    offsets: list[float] = field(default_factory=lambda: [0.0] * len(LABELS))
    language: str = "en"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.members or len(self.members) != len(self.weights):
            raise ValueError("a sentiment model needs at least one member and one weight per member")
        if abs(sum(self.weights) - 1.0) > 1e-6 or min(self.weights) < 0:
            raise ValueError(f"member weights must be >= 0 and sum to 1, got {self.weights}")
        if len(self.offsets) != len(LABELS):
            raise ValueError(f"need {len(LABELS)} decision offsets, got {len(self.offsets)}")

    @property
    def name(self) -> str:
        if len(self.members) == 1:
            return self.members[0].name
        return " + ".join(f"{w:.1f} {m.name}" for m, w in zip(self.members, self.weights, strict=True))

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        total = np.zeros((len(texts), len(LABELS)), np.float64)
        for member, weight in zip(self.members, self.weights, strict=True):
            if weight > 0:
                total += weight * member.predict_proba(texts, progress=progress)
        return total

    def predict(self, texts: Sequence[str], progress: bool = False) -> Prediction:
        probs = self.predict_proba(list(texts), progress=progress) if texts else np.zeros((0, len(LABELS)))
        return Prediction([LABELS[i] for i in decide(probs, self.offsets)] if len(probs) else [],
                          polarity(probs) if len(probs) else np.zeros(0), probs)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        members = []
        for i, member in enumerate(self.members):
            sub = folder / f"member-{i}"
            sub.mkdir()
            member.save(sub)
            params: dict[str, Any] = {}
            if kind_of(member) == "fine-tuned":
                params = {"max_length": member.max_length, "classes": member.classes,  # type: ignore[attr-defined]
                          "pooling": member.pooling}  # type: ignore[attr-defined]
            members.append({"kind": kind_of(member), "name": member.name, "folder": sub.name, "params": params})
        (folder / "sentiment.json").write_text(json.dumps({
            "format": FORMAT, "labels": list(LABELS), "members": members, "weights": self.weights,
            "offsets": self.offsets, "language": self.language, "info": self.info,
        }, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> SentimentModel:
        meta = json.loads((folder / "sentiment.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: sentiment model format {meta.get('format')!r}, this shoprank reads {FORMAT}")
        members = [load_member(m["kind"], folder / m["folder"], m.get("params", {})) for m in meta["members"]]
        return cls(members, [float(w) for w in meta["weights"]], [float(o) for o in meta["offsets"]],
                   meta.get("language", "en"), meta.get("info", {}))
