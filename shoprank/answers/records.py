"""The FAQ contract: entries (an answer and the questions it answers) and past conversations.

``parse_faq_entry`` and ``parse_conversation`` turn a raw mapping into a typed record or raise
:class:`~shoprank.data.records.RecordError` naming the field at fault, like every other record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from shoprank.data.limits import LIMITS
from shoprank.data.records import RecordError, _bool, _identifier, _text

MAX_ANSWER_CHARS = 20_000
MAX_QUESTIONS_PER_ENTRY = 1_000
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
"""A placeholder in an answer template: ``{order_status_url}``."""


@dataclass(frozen=True)
class FaqEntry:
    """One answer of a shop's FAQ and the example questions it answers.

    ``search``: questions matched to this entry are about products, so the answer also carries the search
    engine's products for the question ("do you have cordless drills?")."""

    id: str
    answer: str
    questions: tuple[str, ...]
    search: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "questions": list(self.questions)}

    @property
    def placeholders(self) -> list[str]:
        return list(dict.fromkeys(PLACEHOLDER.findall(self.answer)))


@dataclass(frozen=True)
class Conversation:
    """A past support question and the entry that answered it (``faq_id`` None: no entry fitted, a person
    answered; such questions teach the hand-over threshold what out-of-scope looks like)."""

    question: str
    faq_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _question(value: Any, name: str) -> str:
    return _text({name: value}, name, LIMITS.max_query_chars, required=True)


def parse_faq_entry(raw: Mapping[str, Any]) -> FaqEntry:
    questions = raw.get("questions")
    if isinstance(questions, str):
        questions = [questions]
    if questions is None or (isinstance(questions, list) and not questions):
        raise RecordError("questions", "is required: give at least one example question (3 or more train best)")
    if not isinstance(questions, list):
        raise RecordError("questions", f"must be a list of texts, got {type(questions).__name__}")
    if len(questions) > MAX_QUESTIONS_PER_ENTRY:
        raise RecordError("questions", f"has {len(questions)} questions; the limit is {MAX_QUESTIONS_PER_ENTRY}")
    clean = [_question(q, f"questions[{i}]") for i, q in enumerate(questions)]
    answer = _text(raw, "answer", MAX_ANSWER_CHARS, required=True)
    unknown = sorted(set(raw) - {"id", "answer", "questions", "question", "search"})
    if unknown:
        raise RecordError(unknown[0], "is not a field of an FAQ entry (id, answer, questions, search)")
    return FaqEntry(id=_identifier(raw, "id"), answer=answer, questions=tuple(dict.fromkeys(clean)),
                    search=_bool(raw, "search", False))


def parse_conversation(raw: Mapping[str, Any]) -> Conversation:
    question = _text(raw, "question", LIMITS.max_query_chars, required=True)
    faq_id = _identifier(raw, "faq_id", required=False) or None
    return Conversation(question=question, faq_id=faq_id)
