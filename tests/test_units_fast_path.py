"""normalize_units skips the rules a text cannot match (no digit, no comma, no slash...): the answer must be the
one every rule applied in order gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shoprank.text import units
from shoprank.text.units import normalize_units


def every_rule(text: str) -> str:
    text = text.translate(units._QUOTES)
    text = units._THOUSANDS.sub("", text)
    text = units._LEADING_POINT.sub(r"0.\1", text)
    text = units._DIMENSION.sub(" x ", text)
    text = units._MIXED.sub(units._mixed, text)
    text = units._FRACTION.sub(units._fraction, text)
    text = units._DIMENSION.sub(" x ", text)
    return units._UNIT.sub(units._unit, text)


CASES = ["", "cordless drill", "1/2 in. copper pipe", "2x4x8 lumber", "1-1/2\" pvc", "1,000 sq. ft. .5 in",
         "it’s 5″ wide", "3 × 5 rug", "2*4", "10ft hose", "x", "1/0", "12 v max", "one ” two", "a/b c,d e.f"]


def test_known_cases() -> None:
    for text in CASES:
        assert normalize_units(text) == every_rule(text), text


@given(st.text(alphabet="0123456789 ,./-x×*\"'″′”insftlbvga", max_size=30))
def test_same_as_every_rule(text: str) -> None:
    assert normalize_units(text) == every_rule(text)
