"""Customer-service answers: a shop's FAQ, a fine-tuned matcher that picks the answer for a question and hands
the question to a person when no entry fits, and the engine that serves it."""

from __future__ import annotations

from shoprank.answers.records import Conversation, FaqEntry, parse_conversation, parse_faq_entry

__all__ = ["Conversation", "FaqEntry", "parse_conversation", "parse_faq_entry"]
