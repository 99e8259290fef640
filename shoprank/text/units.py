"""Numbers and units, normalised so that ``1/2 in.``, ``1/2"`` and ``0.5 inch`` become one token.

:func:`normalize_units` rewrites a lower-cased string: fractions and mixed numbers become
decimals (``1-1/2`` -> ``1.5``), thousands separators go, dimensions are split
(``2x4`` -> ``2 x 4``) and a number followed by a unit becomes ``<number><unit>`` with one
canonical spelling per unit (``0.5in``, ``10ft``, ``18v``, ``1.9cuft``).
"""

from __future__ import annotations

import re

# canonical unit -> spellings (lower case; longest alternatives are tried first)
UNITS: dict[str, tuple[str, ...]] = {
    "in": ("inches", "inch", "in.", "in", '"', "''", "″"),
    "ft": ("feet", "foot", "ft.", "ft", "'", "′"),
    "cuft": ("cubic feet", "cubic foot", "cu. ft.", "cu.ft.", "cu ft.", "cu. ft", "cu ft", "cuft"),
    "sqft": ("square feet", "square foot", "sq. ft.", "sq.ft.", "sq ft.", "sq. ft", "sq ft", "sqft"),
    "lb": ("pounds", "pound", "lbs.", "lbs", "lb.", "lb"),
    "oz": ("ounces", "ounce", "oz.", "oz"),
    "gal": ("gallons", "gallon", "gal.", "gal"),
    "qt": ("quarts", "quart", "qt.", "qt"),
    "v": ("volts", "volt", "v"),
    "w": ("watts", "watt", "w"),
    "amp": ("amperes", "ampere", "amps", "amp"),
    "mm": ("millimeters", "millimeter", "mm"),
    "cm": ("centimeters", "centimeter", "cm"),
    "btu": ("btus", "btu"),
    "gpm": ("gpm",),
    "psi": ("psi",),
    "ga": ("gauge", "ga."),
    "yd": ("yards", "yard", "yd."),
    "hp": ("horsepower", "hp"),
    "mah": ("mah",),
    "ah": ("ah",),
    "cfm": ("cfm",),
    "pk": ("packs", "pack", "pk.", "pk"),
}

_SPELLING = {spelling: unit for unit, spellings in UNITS.items() for spelling in spellings}
_ALTERNATIVES = "|".join(re.escape(s) for s in sorted(_SPELLING, key=len, reverse=True))
# a unit is glued to the number or follows one space or hyphen; word units must end at a word boundary
_UNIT = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)(?:\s?-?\s?)({_ALTERNATIVES})(?![a-z0-9])")
_MIXED = re.compile(r"(?<![\w./])(\d+)[\s-]+(\d+)/(\d+)(?![\d/])")
_FRACTION = re.compile(r"(?<![\w./])(\d+)/(\d+)(?![\d/])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LEADING_POINT = re.compile(r"(?<![\w.])\.(\d)")
_DIMENSION = re.compile(r"(?<=\d)\s*[x×*]\s*(?=[\d.])")
_DIGIT = re.compile(r"\d")
_QUOTES = str.maketrans({"”": '"', "“": '"', "″": '"', "’": "'", "‘": "'", "′": "'"})


def format_number(value: float) -> str:
    """Shortest decimal spelling with at most three decimals: 0.5, 1.375, 12."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _mixed(match: re.Match[str]) -> str:
    whole, num, den = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if den == 0 or num >= den:
        return match.group(0)
    return format_number(whole + num / den)


def _fraction(match: re.Match[str]) -> str:
    num, den = int(match.group(1)), int(match.group(2))
    if den == 0 or den > 64:
        return match.group(0)
    return format_number(num / den)


def _unit(match: re.Match[str]) -> str:
    number = format_number(float(match.group(1)))
    return f" {number}{_SPELLING[match.group(2)]} "


def normalize_units(text: str) -> str:
    """Rewrite numbers and units of a lower-cased string into canonical tokens."""
    text = text.translate(_QUOTES)
    if not _DIGIT.search(text):  # every rule below needs a digit (and each its own character: a scan is cheaper)
        return text
    if "," in text:
        text = _THOUSANDS.sub("", text)
    if "." in text:
        text = _LEADING_POINT.sub(r"0.\1", text)
    dimension = "x" in text or "×" in text or "*" in text
    if dimension:
        text = _DIMENSION.sub(" x ", text)
    if "/" in text:
        text = _MIXED.sub(_mixed, text)
        text = _FRACTION.sub(_fraction, text)
        if dimension:
            text = _DIMENSION.sub(" x ", text)
    return _UNIT.sub(_unit, text)
