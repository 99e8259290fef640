from __future__ import annotations

import math
import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoprank.data.records import Product, RecordError, derive_event_id, parse_event, parse_judgment, parse_product

NOW = time.time()


def product(**fields):
    return {"id": "p1", "title": "Cordless Drill", **fields}


def event(**fields):
    return {"event_id": "e1", "user_id": "u1", "item_id": "p1", "type": "click", "timestamp": NOW - 60, **fields}


def test_product_keeps_unknown_fields_in_attributes():
    p = parse_product(product(price="19.5", colour="red", attributes={"size": "M"}))
    assert p.price == 19.5
    assert p.attributes == {"size": "M", "colour": "red"}


def test_text_is_nfc_normalised_and_stripped():
    decomposed = unicodedata.normalize("NFD", "  Café crème ")
    assert parse_product(product(title=decomposed)).title == "Café crème"


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"price": -1}, "price"),
        ({"price": "nan"}, "price"),
        ({"price": math.inf}, "price"),
        ({"id": "x" * 10_000}, "id"),
        ({"id": ""}, "id"),
        ({"title": ""}, "title"),
        ({"title": "t" * 1001}, "title"),
        ({"description": "d" * 20_001}, "description"),
        ({"in_stock": "perhaps"}, "in_stock"),
        ({"created_at": "1970-01-01T00:00:00Z"}, "created_at"),
        ({"attributes": "[1, 2]"}, "attributes"),
    ],
)
def test_bad_product_names_the_field(fields, field_name):
    with pytest.raises(RecordError) as info:
        parse_product(product(**fields))
    assert info.value.field == field_name


def test_id_limit_is_in_bytes():
    parse_product(product(id="é" * 128))  # 256 bytes: at the limit
    with pytest.raises(RecordError, match="bytes"):
        parse_product(product(id="é" * 129))


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"type": "teleport"}, "type"),
        ({"timestamp": "1970-01-01"}, "timestamp"),
        ({"timestamp": NOW + 3 * 86_400}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
        ({"user_id": None}, "user_id"),
        ({"position": -3}, "position"),
        ({"value": "abc"}, "value"),
    ],
)
def test_bad_event_names_the_field(fields, field_name):
    with pytest.raises(RecordError) as info:
        parse_event(event(**fields))
    assert info.value.field == field_name


def test_timestamps_accept_iso_and_epoch():
    iso = parse_event(event(timestamp="2024-03-01T12:00:00Z")).timestamp
    epoch = parse_event(event(timestamp=str(iso))).timestamp
    naive = parse_event(event(timestamp="2024-03-01T12:00:00")).timestamp
    assert iso == epoch == naive == 1709294400.0


def test_event_without_id_gets_a_deterministic_one():
    a = parse_event(event(event_id=None))
    b = parse_event(event(event_id=None))
    assert a.event_id == b.event_id == derive_event_id("u1", "p1", "click", a.timestamp)


def test_judgment_grade_range():
    assert parse_judgment({"query": "drill", "product_id": 7, "grade": "2.5"}).grade == 2.5
    with pytest.raises(RecordError, match="grade"):
        parse_judgment({"query": "drill", "product_id": "7", "grade": -1})


@given(st.text(max_size=50))
def test_parse_product_either_accepts_or_names_a_field(title):
    try:
        p = parse_product(product(title=title))
    except RecordError as exc:
        assert exc.field == "title"
    else:
        assert p.title == unicodedata.normalize("NFC", title).strip()


def test_product_to_dict_is_asdict_with_attributes_copied():
    from dataclasses import asdict

    product = Product(id="p1", title="Drill", brand="Acme", price=9.5, created_at=1.7e9, language="en",
                      attributes={"size": "1/2 in.", "tags": ["a", {"b": [1, 2.5, None, True]}], "pair": (1, "x")})
    data = product.to_dict()
    assert data == asdict(product) and list(data) == list(asdict(product))
    data["attributes"]["tags"][1]["b"].append(3)
    data["attributes"]["size"] = "changed"
    assert product.attributes == {"size": "1/2 in.", "tags": ["a", {"b": [1, 2.5, None, True]}], "pair": (1, "x")}
    assert Product(id="p2", title="t").to_dict() == asdict(Product(id="p2", title="t"))
