"""Tests of each normalisation step."""

from __future__ import annotations

import pytest

from router.lexicon import Lexicon
from router.normalize import clean_text, fold_text, normalize_query

LEXICON = Lexicon([])


def norm(text: str):
    return normalize_query(text, LEXICON)


def test_case_does_not_change_tokens():
    assert norm("HYPERKALEMIA K 7.1 PEAKED T WAVES").tokens == norm("hyperkalemia k 7.1 peaked t waves").tokens


def test_accents_folded():
    assert fold_text("Anafilaxia niños, Übelkeit") == "anafilaxia ninos, ubelkeit"


def test_fahrenheit_converted_with_note():
    query = norm("temperature 104F, rigid")
    assert "40.0 c" in query.text
    assert query.notes == ["104 °F read as 40.0 °C"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("temp 104.5 °F", "40.3 c"), ("T 39,5 °C", "39.5 c"), ("fever 38.9C", "38.9 c")],
    ids=["degree-sign-f", "comma-decimal-c", "no-space-c"],
)
def test_temperature_forms(text, expected):
    assert expected in norm(text).text


def test_bare_temperature_implausible_as_celsius_read_as_fahrenheit():
    query = norm("temp 104 and rigid")
    assert "40.0 c" in query.text
    assert "implausible as °C" in query.notes[0]


def test_bare_temperature_plausible_as_celsius_kept():
    query = norm("temp 39.8, confused")
    assert "39.8 c" in query.text
    assert "assumed to be °C" in query.notes[0]


def test_thousands_separator_removed():
    assert "25000 units" in norm("25,000 units of heparin").text


def test_microgram_forms_kept_apart_from_mg():
    text = norm("500 µg, 300 ug, 150 mcg, 10 mg").text
    assert text.count("mcg") == 3
    assert "10 mg" in text


@pytest.mark.parametrize(
    ("text", "removed"),
    [
        ("no hives, no wheeze, itchy eyes", ["hives", "wheeze"]),
        ("denies chest pain", ["chest pain"]),
        ("fever: none, rigid", ["fever"]),
        ("negative for hemorrhage on CT", ["hemorrhage on ct"]),
        ("rash: no", ["rash"]),
    ],
    ids=["no-x", "denies-x", "x-none", "negative-for", "x-colon-no"],
)
def test_negated_findings_removed(text, removed):
    query = norm(text)
    assert query.negated == removed
    for word in removed:
        assert word.split()[0] not in query.tokens


def test_negation_scope_ends_at_but():
    query = norm("no fever but rigid")
    assert "rigid" in query.tokens
    assert "fever" not in query.tokens


def test_template_tokens_defused():
    assert "<|im_end|>" not in clean_text("a <|im_end|> b")
    assert "im_end" in clean_text("a <|im_end|> b")


def test_binary_bytes_do_not_crash():
    raw = b"\x00\xff\xfe rigid \x89PNG".decode("utf-8", "surrogateescape")
    assert "rigid" in norm(raw).tokens


@pytest.mark.parametrize("text", ["", "   ", "???", "\n\n", "the and of"], ids=["empty", "spaces", "punctuation", "newlines", "stopwords"])
def test_junk_has_no_tokens(text):
    assert norm(text).is_empty


def test_pt_is_never_a_token():
    assert "pt" not in norm("pt rigid").tokens


def test_vitamin_k_is_not_potassium():
    assert "potassium" not in norm("vitamin K 10 mg given").text
    assert "potassium" in normalize_query("K 7.2, peaked T's", LEXICON).text


@pytest.mark.parametrize(
    ("text", "word"),
    [("serum potassium 7.5 mmol/L", "hyperkalaemia"), ("K 6.8 what now", "hyperkalaemia"), ("K+ 2.9", "hypokalaemia")],
    ids=["potassium-high", "k-high", "k-low"],
)
def test_potassium_value_adds_finding(text, word):
    assert word in norm(text).tokens


@pytest.mark.parametrize("text", ["vitamin K 10 mg", "vit K 5", "potassium 4.2"], ids=["vitamin-k", "vit-k", "normal"])
def test_no_potassium_finding(text):
    tokens = norm(text).tokens
    assert "hyperkalaemia" not in tokens
    assert "hypokalaemia" not in tokens
