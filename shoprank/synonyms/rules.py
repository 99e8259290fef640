"""A shop's synonym sets and the query expansion they make.

Two kinds, in the syntax most engines share (Solr, Elasticsearch):

* multi-way ``couch, sofa, settee``: a query with any of them also looks for the others;
* one-way ``tv => television``: a query with ``tv`` also looks for ``television``, not the reverse.

Terms are phrases of up to ``MAX_WORDS`` words, matched on whole words of the normalised (casefolded) query.
Expansion goes one step (``a => b`` and ``b => c`` do not make ``a`` find ``c``), and one-way rules may not
form a loop (``a => b``, ``b => a``: write ``a, b`` instead). A set is refused whole, naming the rule.

An added term counts less than a typed one: in BM25 its score is multiplied by the shop's ``weight``
(:class:`ExpansionConfig`, one for all the shop's sets, default :data:`DEFAULT_WEIGHT`), so a product with the
word the shopper typed outranks one with only its synonym, other things equal.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shoprank.data.limits import LIMITS

MAX_SETS = 2000
MAX_TERMS_PER_SET = 32
MAX_TERMS = 10_000
MAX_TERM_CHARS = 64
MAX_WORDS = 4
DEFAULT_WEIGHT = 0.5
"""BM25 weight of an added synonym's terms (typed terms: 1). Chosen on Home Depot's validation queries by
``python -m bench.synonyms`` (see ``docs/benchmarks.md``)."""


class SynonymError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class SynonymRule:
    """``terms`` all equivalent (multi-way), or ``sources`` that also find ``terms`` (one-way)."""

    terms: tuple[str, ...]
    sources: tuple[str, ...] = ()

    @property
    def one_way(self) -> bool:
        return bool(self.sources)

    def to_text(self) -> str:
        return f"{', '.join(self.sources)} => {', '.join(self.terms)}" if self.sources else ", ".join(self.terms)


@dataclass(frozen=True)
class ExpansionConfig:
    """How an expanded query is scored: ``weight``, in (0, 1], multiplies the BM25 score of every term a
    synonym adds (1: as much as a typed term)."""

    weight: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or not 0 < w <= 1:
            raise SynonymError("weight", f"must be a number above 0 and at most 1 (the share of a typed term's "
                               f"score an added synonym gets; default {DEFAULT_WEIGHT}), got {w!r}")
        object.__setattr__(self, "weight", float(w))


@dataclass(frozen=True)
class Expansion:
    """What a query became: ``text`` (the query, then the added terms), each added term with the query
    term it stands for, and the weight the added terms count with."""

    text: str
    added: tuple[tuple[str, str], ...] = ()
    weight: float = 1.0

    def weighted(self) -> tuple[tuple[str, float], ...]:
        """``(added term, weight)`` pairs, as the search engine's ``expansion`` takes them."""
        return tuple((term, self.weight) for term, _ in self.added)


def _terms(raw: Any, where: str) -> tuple[str, ...]:
    values = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple):
        raise SynonymError(where, "must be a list of terms or a comma-separated string")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise SynonymError(where, f"terms must be text, got {type(value).__name__}")
        term = normalise(value)
        if not term:
            continue
        if len(term) > MAX_TERM_CHARS or len(term.split()) > MAX_WORDS:
            raise SynonymError(where, f"term {term[:40]!r} is too long (at most {MAX_WORDS} words, "
                               f"{MAX_TERM_CHARS} characters)")
        if any(unicodedata.category(ch)[0] == "C" or ch in ",=>" for ch in term):
            raise SynonymError(where, f"term {term[:40]!r} holds control characters or one of , = >")
        if term not in out:
            out.append(term)
    if len(out) > MAX_TERMS_PER_SET:
        raise SynonymError(where, f"holds {len(out)} terms; a set holds at most {MAX_TERMS_PER_SET}")
    return tuple(out)


def parse_rule(raw: Any, where: str) -> SynonymRule:
    """``"a, b, c"``, ``"a => b"``, ``{"terms": [...]}`` or ``{"from": [...], "to": [...]}``."""
    if isinstance(raw, str):
        if raw.count("=>") > 1:
            raise SynonymError(where, "holds '=>' more than once")
        if "=>" in raw:
            left, right = raw.split("=>")
            raw = {"from": left, "to": right}
        else:
            raw = {"terms": raw}
    if not isinstance(raw, Mapping):
        raise SynonymError(where, "must be 'a, b, c', 'a => b', {\"terms\": [...]} or {\"from\": ..., \"to\": ...}")
    unknown = sorted(set(raw) - {"terms", "from", "to"})
    if unknown or ("terms" in raw) == ("from" in raw or "to" in raw):
        raise SynonymError(where, "give either terms (multi-way) or from and to (one-way)")
    if "terms" in raw:
        terms = _terms(raw["terms"], where)
        if len(terms) < 2:
            raise SynonymError(where, "a multi-way set needs at least two different terms")
        return SynonymRule(terms)
    sources, targets = _terms(raw.get("from", ()), where), _terms(raw.get("to", ()), where)
    if not sources or not targets:
        raise SynonymError(where, "a one-way rule needs terms on both sides of '=>'")
    if set(sources) & set(targets):
        raise SynonymError(where, f"{sorted(set(sources) & set(targets))[0]!r} is on both sides of '=>'")
    return SynonymRule(targets, sources)


def _check_loops(rules: Sequence[SynonymRule]) -> None:
    edges: dict[str, set[str]] = {}
    for n, rule in enumerate(rules):
        if not rule.one_way:
            continue
        for source in rule.sources:
            for target in rule.terms:
                edges.setdefault(source, set()).add(target)
                # does target already lead back to source?
                stack, seen = [target], {target}
                while stack:
                    node = stack.pop()
                    if node == source:
                        raise SynonymError(f"synonyms[{n}]", f"'{source} => {target}' closes a loop back to "
                                           f"'{source}'; make them one multi-way set ('{source}, {target}')")
                    for nxt in edges.get(node, ()):
                        if nxt not in seen:
                            seen.add(nxt)
                            stack.append(nxt)


class Synonyms:
    """A checked list of rules, how added terms are weighted, and the expansion they make."""

    def __init__(self, rules: Sequence[SynonymRule] = (), config: ExpansionConfig | None = None) -> None:
        self.rules = tuple(rules)
        self.config = config or ExpansionConfig()
        self._expands: dict[str, list[str]] = {}
        for rule in self.rules:
            if rule.one_way:
                for source in rule.sources:
                    self._expands.setdefault(source, []).extend(t for t in rule.terms if t != source)
            else:
                for term in rule.terms:
                    self._expands.setdefault(term, []).extend(t for t in rule.terms if t != term)
        phrases = sorted(self._expands, key=lambda t: (-len(t), t))
        self._pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)") \
            if phrases else None

    @classmethod
    def from_dict(cls, raw: Any) -> Synonyms:
        """``{"synonyms": [rule, ...], "weight": w}`` (``weight`` optional; or the list itself) -> checked rules;
        refused whole on any problem."""
        rules_raw = raw.get("synonyms") if isinstance(raw, Mapping) else raw
        if isinstance(raw, Mapping) and sorted(set(raw) - {"synonyms", "weight"}):
            raise SynonymError(sorted(set(raw) - {"synonyms", "weight"})[0],
                               "is not a field (send {\"synonyms\": [...], \"weight\": w})")
        config = ExpansionConfig(raw["weight"]) if isinstance(raw, Mapping) and "weight" in raw else ExpansionConfig()
        if not isinstance(rules_raw, list):
            raise SynonymError("synonyms", "must be a list of rules ('a, b, c' or 'a => b')")
        if len(rules_raw) > MAX_SETS:
            raise SynonymError("synonyms", f"holds {len(rules_raw)} rules; the limit is {MAX_SETS}")
        rules = [parse_rule(r, f"synonyms[{n}]") for n, r in enumerate(rules_raw)]
        total = sum(len(r.terms) + len(r.sources) for r in rules)
        if total > MAX_TERMS:
            raise SynonymError("synonyms", f"holds {total} terms in all; the limit is {MAX_TERMS}")
        _check_loops(rules)
        return cls(rules, config)

    @property
    def weight(self) -> float:
        return self.config.weight

    def to_dict(self) -> dict[str, Any]:
        return {"synonyms": [r.to_text() for r in self.rules], "weight": self.weight}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def expand(self, query: str) -> Expansion:
        """The query with the synonyms of its terms added (one step, each term once)."""
        if self._pattern is None:
            return Expansion(query)
        text = normalise(query)
        added: list[tuple[str, str]] = []
        have = set(text.split())
        budget = LIMITS.max_query_chars - len(query)
        for match in self._pattern.finditer(text):
            for term in self._expands[match.group(1)]:
                if term in have or any(term == a for a, _ in added) or len(term) + 1 > budget:
                    continue
                added.append((term, match.group(1)))
                budget -= len(term) + 1
        if not added:
            return Expansion(query)
        return Expansion(" ".join([query, *(a for a, _ in added)]), tuple(added), self.weight)


def explain(reasons: Sequence[str], added: Sequence[tuple[str, str]]) -> list[str]:
    """Reasons with each matched synonym said as such: "matches 'sofa' (synonym of 'couch')"."""
    out = []
    for reason in reasons:
        if reason.startswith("matches"):
            for term, of in added:
                reason = re.sub(rf"'?(?<!\w){re.escape(term)}(?!\w)'?", f"'{term}' (synonym of '{of}')", reason,
                                count=1)
        out.append(reason)
    return out


SETTING_KEY = "synonyms"


def load_synonyms(store: Any) -> Synonyms:
    raw = store.get_setting(SETTING_KEY)
    return Synonyms() if raw is None else Synonyms.from_dict(raw)


def save_synonyms(store: Any, synonyms: Synonyms) -> None:
    store.set_setting(SETTING_KEY, synonyms.to_dict())
