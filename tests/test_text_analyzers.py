from __future__ import annotations

import pytest

from shoprank.text import EnglishAnalyzer, make_analyzer, normalize_units
from shoprank.text.chinese import ChineseAnalyzer, char_bigrams
from shoprank.text.english import light_stem
from shoprank.text.spelling import SpellCorrector


@pytest.mark.parametrize("text", ['1/2 in. pipe', '1/2" pipe', "0.5 inch pipe", "1/2'' pipe", ".5 inches pipe"])
def test_half_inch_spellings_meet(text: str) -> None:
    assert EnglishAnalyzer()(text) == ["0.5in", "0.5", "pipe"]


@pytest.mark.parametrize(("raw", "canonical"), [
    ("1-1/2 in.", "1.5in"), ("10 ft.", "10ft"), ("18-volt", "18v"), ("1.9 cu. ft.", "1.9cuft"),
    ("1,000 watt", "1000w"), ("3 gal.", "3gal"), ("5 lbs", "5lb"),
])
def test_units_are_canonical(raw: str, canonical: str) -> None:
    assert normalize_units(raw).split() == [canonical]


def test_dimensions_split() -> None:
    assert EnglishAnalyzer()("2x4 stud") == ["2", "4", "stud"]


def test_stop_words_and_plural_stemming() -> None:
    assert EnglishAnalyzer()("The ladders and batteries for boxes") == ["ladder", "battery", "boxe"]
    assert light_stem("glass") == "glass" and light_stem("cactus") == "cactus"


def test_chinese_words_and_bigrams() -> None:
    tokens = ChineseAnalyzer()("落地窗 LED")
    assert "#落地" in tokens and "#地窗" in tokens and "led" in tokens
    assert any(not t.startswith("#") and "窗" in t for t in tokens)  # a jieba word
    assert char_bigrams("窗") == ["窗"]
    assert ChineseAnalyzer(words=False)("落地窗") == ["#落地", "#地窗"]


def test_make_analyzer_round_trip_and_unknown_name() -> None:
    analyzer = make_analyzer("chinese")
    assert make_analyzer(analyzer.config()).config() == analyzer.config()
    with pytest.raises(ValueError, match="valid names: english, chinese"):
        make_analyzer("klingon")


def test_spelling_corrects_against_catalogue_vocabulary(tmp_path) -> None:
    corrector = SpellCorrector.from_texts([["cordless", "drill", "vacuum"]] * 3)
    assert corrector.correct(["cordles", "dril", "vaccum", "drill", "18v"]) == [
        "cordless", "dril", "vacuum", "drill", "18v"]  # 'dril' is shorter than the 5-letter minimum
    corrector.save(tmp_path)
    assert SpellCorrector.load(tmp_path).correct(["vaccum"]) == ["vacuum"]
