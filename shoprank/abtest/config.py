"""An online experiment as a shop defines it: A/B (each shopper sees one variant) or interleaving (both
variants' rankings merged into one list), on search or recommendations.

``parse_experiment`` checks a definition whole and names the field of the first problem
(:class:`ExperimentError`); nothing of a bad definition is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("ab", "interleave")
SURFACES = ("search", "recommend")
MODEL_CHOICES = ("latest", "baseline")
"""Besides a published version: ``latest`` (what the shop serves now), ``baseline`` (its newest untrained
``baseline-`` bundle)."""
MAX_VARIANTS = 8
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VARIANT_KEYS = ("search_model", "recommend_model", "diversity", "rules")


class ExperimentError(ValueError):
    """A definition that cannot be run; ``field`` names where (``variants.B.search_model``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Variant:
    """What one arm serves: a model version per kind (``latest`` by default), a diversity λ (None: the
    shop's), and whether the shop's business rules apply."""

    name: str
    search_model: str = "latest"
    recommend_model: str = "latest"
    diversity: float | None = None
    rules: bool = True

    def model(self, kind: str) -> str:
        return self.search_model if kind == "search" else self.recommend_model

    def to_dict(self) -> dict[str, Any]:
        return {"search_model": self.search_model, "recommend_model": self.recommend_model,
                "diversity": self.diversity, "rules": self.rules}


@dataclass(frozen=True)
class Experiment:
    """A definition plus its life: ``state`` running or stopped, ``salt`` (assignment), times."""

    name: str
    kind: str
    surface: str
    variants: tuple[Variant, ...]
    traffic: tuple[float, ...]
    alpha: float = 0.05
    state: str = "running"
    salt: str = ""
    created_at: float = 0.0
    stopped_at: float | None = None
    definition: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "surface": self.surface,
                "variants": {v.name: v.to_dict() for v in self.variants},
                "traffic": dict(zip(self.names, self.traffic, strict=True)), "alpha": self.alpha,
                "state": self.state, "salt": self.salt, "created_at": self.created_at, "stopped_at": self.stopped_at}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Experiment:
        """A stored experiment (as :meth:`to_dict` wrote it)."""
        variants = tuple(Variant(name, **spec) for name, spec in raw["variants"].items())
        return cls(raw["name"], raw["kind"], raw["surface"], variants,
                   tuple(float(raw["traffic"][v.name]) for v in variants), float(raw.get("alpha", 0.05)),
                   raw.get("state", "running"), raw.get("salt", ""), float(raw.get("created_at", 0.0)),
                   raw.get("stopped_at"))


def check_name(name: str, field_name: str = "name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ExperimentError(field_name, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                              f"or digit; got {str(name)[:70]!r}")
    return name


def parse_experiment(name: str, body: Any, *, versions: Callable[[str], list[str]]) -> Experiment:
    """A definition from the API or CLI -> an :class:`Experiment` (running, without salt or times yet).

    ``versions(kind)`` lists the shop's published bundle versions of "search" / "recommend"."""
    check_name(name)
    if not isinstance(body, Mapping):
        raise ExperimentError("body", "must be a JSON object with kind, surface, variants and traffic")
    unknown = sorted(set(body) - {"kind", "surface", "variants", "traffic", "alpha"})
    if unknown:
        raise ExperimentError(unknown[0], "is not a field of an experiment (kind, surface, variants, traffic, alpha)")
    kind = body.get("kind", "ab")
    if kind not in KINDS:
        raise ExperimentError("kind", f"must be one of {', '.join(KINDS)}; got {str(kind)[:40]!r}")
    surface = body.get("surface")
    if surface not in SURFACES:
        raise ExperimentError("surface", f"must be one of {', '.join(SURFACES)}; got {str(surface)[:40]!r}")
    model_kind = surface
    if not versions(model_kind):
        raise ExperimentError("surface", f"the shop has no {model_kind} model to experiment with; train or "
                              "import one first")
    raw_variants = body.get("variants")
    if not isinstance(raw_variants, Mapping) or not 2 <= len(raw_variants) <= MAX_VARIANTS:
        raise ExperimentError("variants", f"must be an object of 2 to {MAX_VARIANTS} named variants")
    if kind == "interleave" and len(raw_variants) != 2:
        raise ExperimentError("variants", "interleaving compares exactly two variants")
    variants = tuple(_variant(str(n), spec, versions) for n, spec in raw_variants.items())
    traffic = _traffic(body.get("traffic"), [v.name for v in variants], required=kind == "ab")
    alpha = body.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.001 <= alpha <= 0.2:
        raise ExperimentError("alpha", f"must be a number from 0.001 to 0.2; got {str(alpha)[:20]!r}")
    return Experiment(name, kind, surface, variants, traffic, float(alpha), definition=dict(body))


def _variant(name: str, spec: Any, versions: Callable[[str], list[str]]) -> Variant:
    where = f"variants.{name}"
    check_name(name, where)
    if not isinstance(spec, Mapping):
        raise ExperimentError(where, "must be an object (search_model, recommend_model, diversity, rules)")
    unknown = sorted(set(spec) - set(VARIANT_KEYS))
    if unknown:
        raise ExperimentError(f"{where}.{unknown[0]}", f"is not a variant setting ({', '.join(VARIANT_KEYS)})")
    models = {}
    for kind in ("search", "recommend"):
        key = f"{kind}_model"
        value = spec.get(key, "latest")
        if not isinstance(value, str) or not value:
            raise ExperimentError(f"{where}.{key}", "must be a model version, 'latest' or 'baseline'")
        published = versions(kind)
        if value == "baseline" and not any(v.startswith("baseline-") for v in published):
            raise ExperimentError(f"{where}.{key}", f"the shop has no baseline {kind} bundle")
        if value not in MODEL_CHOICES and value not in published:
            shown = ", ".join(published[-5:]) or "none"
            raise ExperimentError(f"{where}.{key}", f"unknown {kind} model version {value[:80]!r} (published: "
                                  f"{shown}; or 'latest', 'baseline')")
        models[key] = value
    diversity = spec.get("diversity")
    if diversity is not None and (isinstance(diversity, bool) or not isinstance(diversity, int | float)
                                  or not math.isfinite(diversity) or not 0 <= diversity <= 1):
        raise ExperimentError(f"{where}.diversity", f"must be a number from 0 (off) to 1; got {str(diversity)[:20]}")
    rules = spec.get("rules", True)
    if not isinstance(rules, bool):
        raise ExperimentError(f"{where}.rules", "must be true or false")
    return Variant(name, models["search_model"], models["recommend_model"],
                   None if diversity is None else float(diversity), rules)


def _traffic(raw: Any, names: list[str], *, required: bool) -> tuple[float, ...]:
    if raw is None and not required:
        return tuple(1.0 / len(names) for _ in names)
    if not isinstance(raw, Mapping):
        raise ExperimentError("traffic", "must be an object of variant name -> share, the shares summing to 1")
    missing = [n for n in names if n not in raw]
    extra = [n for n in raw if n not in names]
    if missing or extra:
        raise ExperimentError("traffic", f"must name exactly the variants ({', '.join(names)}); "
                              + (f"missing {missing[0]!r}" if missing else f"unknown {str(extra[0])[:40]!r}"))
    shares = []
    for n in names:
        share = raw[n]
        if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) \
                or not 0 < share <= 1:
            raise ExperimentError(f"traffic.{n}", f"must be a share above 0 and at most 1; got {str(share)[:20]}")
        shares.append(float(share))
    if abs(sum(shares) - 1.0) > 1e-6:
        raise ExperimentError("traffic", f"the shares sum to {sum(shares):.6g}; they must sum to 1")
    return tuple(shares)
