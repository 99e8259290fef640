"""Serving answers: a published ``answers`` bundle (the matcher and the FAQ it was trained on) answering
questions, and publishing one from a shop's FAQ (``shoprank train answers``)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shoprank.answers.model import Matcher, load_matcher
from shoprank.answers.records import PLACEHOLDER, FaqEntry
from shoprank.answers.train import AnswerTrainConfig, TrainReport, train_answers
from shoprank.shops import Shop

KIND = "answers"
VALUES_SETTING = "answers.values"
"""Shop setting: ``{placeholder: text}`` filled into answer templates (``{opening_hours}``)."""


def fill(template: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """The template with known placeholders filled, and the names left unfilled."""
    missing: list[str] = []

    def one(match: Any) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        missing.append(name)
        return match.group(0)

    return PLACEHOLDER.sub(one, template), list(dict.fromkeys(missing))


@dataclass(frozen=True)
class Answer:
    """What ``GET /shops/{shop}/answer`` says (products are added by the caller that has a search engine)."""

    faq_id: str | None
    text: str | None
    confidence: float
    handoff: bool
    search: bool
    placeholders: list[str]
    alternatives: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        answer = None if self.faq_id is None else {"faq_id": self.faq_id, "text": self.text,
                                                   "confidence": self.confidence, "placeholders": self.placeholders}
        return {"answer": answer, "handoff": self.handoff, "alternatives": self.alternatives}


class AnswerEngine:
    """The shop's answers model as published; ``answer(questions)`` -> one :class:`Answer` each."""

    def __init__(self, model: Matcher, entries: Sequence[FaqEntry], version: str = "") -> None:
        self.model = model
        self.entries = {e.id: e for e in entries}
        self.version = version
        missing = [i for i in model.entry_ids if i not in self.entries]
        if missing:
            raise ValueError(f"the bundle's FAQ lacks entries the model knows: {missing[:5]}")

    @classmethod
    def load(cls, shop: Shop, version: str | None = None) -> AnswerEngine:
        from shoprank.bundles import open_bundle

        bundle = open_bundle(shop.models_path, KIND, version)
        entries = [FaqEntry(id=r["id"], answer=r["answer"], questions=tuple(r["questions"]),
                            search=bool(r.get("search", False)))
                   for r in map(json.loads, (bundle.path / "faq.jsonl").read_text(encoding="utf-8").splitlines())]
        return cls(load_matcher(bundle.path / "matcher"), entries, bundle.version)

    def answer(self, questions: Sequence[str], *, k: int = 3, current: Mapping[str, FaqEntry] | None = None,
               values: Mapping[str, str] | None = None) -> list[Answer]:
        """``current``: the FAQ as stored now (an answer text edited since training is served as edited; an
        entry deleted since is not answered); ``values`` fill the templates' placeholders."""
        out = []
        for match in self.model.match(questions, k=k + 1):
            live = [(i, c) for i, c in zip(match.entry_ids, match.confidences, strict=True)
                    if current is None or i in current]
            best_id, best_conf = live[0] if live else (None, 0.0)
            handoff = match.handoff or best_id is None or best_id != match.entry_ids[0]
            alternatives = [{"faq_id": i, "confidence": c} for i, c in live[(0 if handoff else 1):][:k]]
            entry = (current or self.entries).get(best_id) if best_id is not None else None
            if handoff or entry is None:
                out.append(Answer(None, None, float(best_conf), True, False, [], alternatives))
                continue
            text, missing = fill(entry.answer, values or {})
            out.append(Answer(entry.id, text, float(best_conf), False, entry.search, missing, alternatives))
        return out


def publish_answers(shop: Shop, config: AnswerTrainConfig, intent_sets: Sequence[str] = ()
                    ) -> tuple[str, TrainReport]:
    """Train on the shop's FAQ and conversations (helped by public intent sets, when named), publish a bundle."""
    from shoprank.answers.intents import out_of_scope_questions, warmup_questions
    from shoprank.bundles import latest_version, publish

    with shop.store(create=False) as store:
        entries = store.faq_entries()
        known = {e.id for e in entries}
        conversations = [c for c in store.conversations() if c.faq_id is None or c.faq_id in known]
    warmup = warmup_questions(list(intent_sets)) if intent_sets else None
    extra_oos: list[str] = []
    if "clinc150" in intent_sets and not any(c.faq_id is None for c in conversations):
        extra_oos = out_of_scope_questions()  # CLINC150's out-of-scope questions stand in for the shop's own
    model, report = train_answers(entries, conversations, config, warmup, extra_oos)
    params = {"report": {k: v for k, v in asdict(report).items() if k != "history"}, "intent_sets": list(intent_sets),
              "conversations": len(conversations), "trained_at": time.time()}
    with publish(shop.models_path, KIND, params) as folder:
        model.save(folder / "matcher")
        (folder / "faq.jsonl").write_text(
            "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    return latest_version(shop.models_path, KIND) or "", report
