"""The data contract: products, events, judgments and reviews, and their validation.

``parse_product``, ``parse_event`` and ``parse_judgment`` turn a raw mapping (a JSON
object, a CSV row) into a typed, normalised record or raise :class:`RecordError`
naming the field at fault. Text is NFC-normalised and stripped; unknown product
fields are kept in ``attributes``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shoprank.data.limits import EVENT_TYPES, LIMITS


class RecordError(ValueError):
    """A record breaks the data contract. ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str, line: int | None = None) -> None:
        self.field = field_name
        self.message = message
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}field '{field_name}': {message}")

    def at_line(self, line: int) -> RecordError:
        return RecordError(self.field, self.message, line)


class JsonConstant:
    """What JSON's ``NaN``, ``Infinity`` and ``-Infinity`` are read as (files and HTTP bodies alike), so that
    the record's parser refuses them naming the field instead of storing a null or a non-number."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def json_constant(name: str) -> JsonConstant:
    """``json.loads(..., parse_constant=json_constant)``."""
    return JsonConstant(name)


def _refuse_constants(raw: Mapping[str, Any]) -> None:
    def find(value: Any, path: str) -> None:
        if isinstance(value, JsonConstant):
            raise RecordError(path, f"{value.name} is not a JSON number; send a finite number, or null when "
                              "there is no value")
        if isinstance(value, dict):
            for key, item in value.items():
                find(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                find(item, f"{path}[{i}]")

    for key, value in raw.items():
        find(value, str(key))


def _plain_copy(value: Any) -> Any:
    """A copy of JSON-like data: dicts, lists and tuples copied all the way down, immutable scalars shared."""
    if isinstance(value, dict):
        return {_plain_copy(k): _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain_copy(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    import copy

    return copy.deepcopy(value)


@dataclass(frozen=True)
class Product:
    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    currency: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    in_stock: bool = True
    created_at: float | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data, ``attributes`` copied (what ``dataclasses.asdict`` gives, without its
        per-field deep copies of immutable values: 3 us a product instead of 17 us, each stored product)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["attributes"] = _plain_copy(self.attributes)
        return data

    @property
    def category_path(self) -> list[str]:
        return [part.strip() for part in self.category.split(">") if part.strip()]

    @property
    def top_category(self) -> str:
        path = self.category_path
        return path[0] if path else ""

    def text(self) -> str:
        """The product as one string for text encoders: title, brand, category, description."""
        parts = [self.title]
        if self.brand:
            parts.append(self.brand)
        if self.category:
            parts.append(self.category)
        if self.description:
            parts.append(self.description)
        return " | ".join(parts)


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: str
    item_id: str
    type: str
    timestamp: float
    query: str | None = None
    position: int | None = None
    session_id: str | None = None
    value: float | None = None
    request_id: str | None = None
    """The answer (impression) the event came from. As sent, it is a claim; as stored, it is set only when the
    event was attributed to an impression of the same shop (see :mod:`shoprank.data.attribution`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Judgment:
    query: str
    product_id: str
    grade: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Review:
    """A shopper's review of a product. Upserted by ``review_id`` (a re-sent id is an edit)."""

    review_id: str
    product_id: str
    text: str
    timestamp: float
    user_id: str | None = None
    rating: float | None = None
    title: str | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def full_text(self) -> str:
        """Title and text as one string for the sentiment model."""
        return f"{self.title}. {self.text}" if self.title else self.text


PRODUCT_FIELDS = tuple(Product.__dataclass_fields__)
EVENT_FIELDS = tuple(Event.__dataclass_fields__)
JUDGMENT_FIELDS = tuple(Judgment.__dataclass_fields__)
REVIEW_FIELDS = tuple(Review.__dataclass_fields__)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "") or (
        isinstance(value, float) and math.isnan(value)
    )


def _text(raw: Mapping[str, Any], name: str, max_chars: int, *, required: bool = False) -> str:
    value = raw.get(name)
    if _missing(value):
        if required:
            raise RecordError(name, "is required")
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise RecordError(name, f"must be text, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", str(value)).strip()
    if "\x00" in text:
        raise RecordError(name, "contains a NUL character")
    if len(text) > max_chars:
        raise RecordError(name, f"is {len(text)} characters long; the limit is {max_chars}")
    return text


def _identifier(raw: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = raw.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _text(raw | {name: value}, name, 10 * LIMITS.max_id_bytes, required=required)
    size = len(text.encode("utf-8"))
    if size > LIMITS.max_id_bytes:
        raise RecordError(name, f"is {size} bytes long; the limit is {LIMITS.max_id_bytes} bytes")
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise RecordError(name, "contains control characters")
    return text


def _number(raw: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    value = raw.get(name)
    if _missing(value):
        if required:
            raise RecordError(name, "is required")
        return None
    if isinstance(value, bool):
        raise RecordError(name, "must be a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecordError(name, f"must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise RecordError(name, "must be a finite number")
    return number


def _bool(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name)
    if _missing(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "y", "t"}:
        return True
    if text in {"false", "no", "0", "n", "f"}:
        return False
    raise RecordError(name, f"must be true or false, got {str(value)[:40]!r}")


def parse_timestamp(value: Any, name: str = "timestamp") -> float:
    """ISO 8601 text or epoch seconds -> epoch seconds, within the contract's range."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise RecordError(
                    name, f"must be ISO 8601 or epoch seconds, got {text[:40]!r}"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = moment.timestamp()
    else:
        raise RecordError(name, f"must be ISO 8601 or epoch seconds, got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise RecordError(name, "must be finite")
    latest = time.time() + LIMITS.future_slack_seconds
    if seconds < LIMITS.min_timestamp or seconds > latest:
        earliest = datetime.fromtimestamp(LIMITS.min_timestamp, UTC).date().isoformat()
        raise RecordError(name, f"must lie between {earliest} and one day from now")
    return seconds


def _attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    value = raw.get("attributes")
    if _missing(value):
        attributes: dict[str, Any] = {}
    elif isinstance(value, str):
        try:
            attributes = json.loads(value)
        except json.JSONDecodeError:
            raise RecordError("attributes", "must be a JSON object") from None
    else:
        attributes = value
    if not isinstance(attributes, dict):
        raise RecordError("attributes", "must be an object of name: value")
    extras = {k: v for k, v in raw.items() if k not in PRODUCT_FIELDS and not _missing(v)}
    merged = {**attributes, **extras}
    if len(merged) > LIMITS.max_attributes:
        raise RecordError("attributes", f"has {len(merged)} entries; the limit is {LIMITS.max_attributes}")
    clean: dict[str, Any] = {}
    for key, item in merged.items():
        name = unicodedata.normalize("NFC", str(key)).strip()
        if isinstance(item, str):
            item = unicodedata.normalize("NFC", item).strip()
        encoded = json.dumps(item, ensure_ascii=False, default=str)
        if len(name) > 256 or len(encoded) > LIMITS.max_attribute_chars:
            raise RecordError(f"attributes.{name[:40]}", "is too long")
        if isinstance(item, float) and not math.isfinite(item):
            raise RecordError(f"attributes.{name[:40]}", "must be a finite number")
        clean[name] = item
    return clean


def parse_product(raw: Mapping[str, Any]) -> Product:
    _refuse_constants(raw)
    price = _number(raw, "price")
    if price is not None and not 0 <= price <= LIMITS.max_price:
        raise RecordError("price", f"must be between 0 and {LIMITS.max_price:g}, got {price:g}")
    created = raw.get("created_at")
    language = _text(raw, "language", 16) or None
    return Product(
        id=_identifier(raw, "id"),
        title=_text(raw, "title", LIMITS.max_title_chars, required=True),
        description=_text(raw, "description", LIMITS.max_description_chars),
        category=_text(raw, "category", LIMITS.max_category_chars),
        brand=_text(raw, "brand", LIMITS.max_brand_chars),
        price=price,
        currency=_text(raw, "currency", 8).upper(),
        attributes=_attributes(raw),
        in_stock=_bool(raw, "in_stock", True),
        created_at=None if _missing(created) else parse_timestamp(created, "created_at"),
        language=language,
    )


def product_fields(raw: Mapping[str, Any]) -> frozenset[str]:
    """The product fields a raw record sets: its known keys, and ``attributes`` when it has any unknown key
    (those go into ``attributes``). An upsert that merges changes these fields only."""
    present = {k for k in raw if k in PRODUCT_FIELDS}
    if any(k not in PRODUCT_FIELDS and not _missing(v) for k, v in raw.items()):
        present.add("attributes")
    return frozenset(present | {"id"})


def unknown_product(item_id: str) -> RecordError:
    """The refusal of an event whose product the shop does not hold (every door says the same)."""
    return RecordError("item_id", f"unknown product {item_id[:100]!r}; upsert it first")


def derive_event_id(user_id: str, item_id: str, type_: str, timestamp: float) -> str:
    """A deterministic idempotency key for events that arrive without one."""
    digest = hashlib.sha1(f"{user_id}\x1f{item_id}\x1f{type_}\x1f{timestamp!r}".encode()).hexdigest()
    return f"h:{digest[:24]}"


def parse_event(raw: Mapping[str, Any]) -> Event:
    _refuse_constants(raw)
    user_id = _identifier(raw, "user_id")
    item_id = _identifier(raw, "item_id")
    type_ = _text(raw, "type", 32, required=True).lower()
    if type_ not in EVENT_TYPES:
        raise RecordError("type", f"must be one of {', '.join(EVENT_TYPES)}; got {type_[:40]!r}")
    if _missing(raw.get("timestamp")):
        raise RecordError("timestamp", "is required")
    timestamp = parse_timestamp(raw["timestamp"])
    event_id = _identifier(raw, "event_id", required=False) or derive_event_id(
        user_id, item_id, type_, timestamp
    )
    position = _number(raw, "position")
    if position is not None and (not position.is_integer() or not 0 <= position <= LIMITS.max_position):
        raise RecordError("position", f"must be a whole number from 0 to {LIMITS.max_position}")
    return Event(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        type=type_,
        timestamp=timestamp,
        query=_text(raw, "query", LIMITS.max_query_chars) or None,
        position=None if position is None else int(position),
        session_id=_identifier(raw, "session_id", required=False) or None,
        value=_number(raw, "value"),
        request_id=_identifier(raw, "request_id", required=False) or None,
    )


def parse_judgment(raw: Mapping[str, Any]) -> Judgment:
    _refuse_constants(raw)
    grade = _number(raw, "grade", required=True)
    assert grade is not None
    if not 0 <= grade <= LIMITS.max_grade:
        raise RecordError("grade", f"must be between 0 and {LIMITS.max_grade:g}, got {grade:g}")
    return Judgment(
        query=_text(raw, "query", LIMITS.max_query_chars, required=True),
        product_id=_identifier(raw, "product_id"),
        grade=grade,
    )


def parse_review(raw: Mapping[str, Any]) -> Review:
    """A review: ``text`` must not be empty, ``rating`` (optional) lies in 1-5. A review of a product the
    shop does not know is valid here; the store keeps it and flags it (see docs/sentiment.md)."""
    rating = _number(raw, "rating")
    if rating is not None and not LIMITS.min_rating <= rating <= LIMITS.max_rating:
        raise RecordError("rating", f"must be between {LIMITS.min_rating:g} and {LIMITS.max_rating:g} stars, "
                                    f"got {rating:g}")
    value = raw.get("text")
    if isinstance(value, str) and len(value) > 4 * LIMITS.max_review_chars:  # do not normalise a megabyte
        raise RecordError("text", f"is {len(value)} characters long; the limit is {LIMITS.max_review_chars}")
    if _missing(raw.get("timestamp")):
        raise RecordError("timestamp", "is required")
    return Review(
        review_id=_identifier(raw, "review_id"),
        product_id=_identifier(raw, "product_id"),
        text=_text(raw, "text", LIMITS.max_review_chars, required=True),
        timestamp=parse_timestamp(raw["timestamp"]),
        user_id=_identifier(raw, "user_id", required=False) or None,
        rating=rating,
        title=_text(raw, "title", LIMITS.max_review_title_chars) or None,
        language=_text(raw, "language", 16) or None,
    )


PARSERS = {"products": parse_product, "events": parse_event, "judgments": parse_judgment,
           "reviews": parse_review}
"""Record kind -> parser. The kinds are the verbs of ``shoprank ingest``."""
