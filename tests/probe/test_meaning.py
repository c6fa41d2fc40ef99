"""Reading the meaning of replies: drugs, actions, doses and chosen ids, not wording."""

from __future__ import annotations

import pytest

from probe.meaning import TermTable, answer_changes, choice_changes, choice_finished, is_choice_prefix, read_answer, read_choice
from router.library import load_library
from tests.conftest import STARTER

CANDIDATES = ["malignant-hyperthermia", "heat-stroke", "neuroleptic-malignant-syndrome"]


@pytest.fixture(scope="module")
def table() -> TermTable:
    return TermTable.for_library(load_library(STARTER))


@pytest.mark.parametrize(
    ("text", "first_key", "drugs", "dose"),
    [
        ("Give dantrolene 2.5 mg/kg IV now; cool only as an adjunct.", "dantrolene", {"dantrolene"}, "2.5mg/kg"),
        ("Start cold-water immersion at once. Dantrolene is not recommended.", "cooling", set(), None),
        ("Epinephrine 0.5 mg IM into the thigh, then chlorphenamine.", "adrenaline", {"adrenaline", "antihistamine"}, "0.5mg"),
        ("Revonto 20 mg vials, mixed with sterile water.", "dantrolene", {"dantrolene"}, "20mg"),
        ("Lorazepam for agitation, then cyproheptadine 12 mg.", "benzodiazepine", {"benzodiazepine", "cyproheptadine"}, "12mg"),
        ("Use rocuronium, never succinylcholine.", "non-depolarising neuromuscular blocker", {"non-depolarising neuromuscular blocker"}, None),
        ("Stop the haloperidol and give IV fluids.", None, set(), None),
        ("The first drug to give is nitrous oxide.", "nitrous oxide", {"nitrous oxide"}, None),
    ],
    ids=["drug-dose", "action-first", "synonym-class", "brand-name", "class-member", "longest-spelling", "support-only", "off-protocol-drug"],
)
def test_read_answer(table: TermTable, text: str, first_key: str | None, drugs: set[str], dose: str | None) -> None:
    reading = read_answer(text, table)
    assert reading.first_key == first_key
    assert reading.drugs == drugs
    assert reading.first_dose == dose


def test_support_terms_read_but_not_key(table: TermTable) -> None:
    reading = read_answer("Stop the antipsychotic, give oxygen and fluids.", table)
    assert reading.terms == ("stop trigger", "antipsychotic", "oxygen", "fluids")
    assert reading.key_terms == ()


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Give adrenaline, not antihistamines.", ("adrenaline",)),
        ("Do not give dantrolene; cool the patient.", ("cooling",)),
        ("Antihistamines and corticosteroids are not first-line: give IM adrenaline.", ("adrenaline",)),
        ("Avoid succinylcholine; use rocuronium.", ("non-depolarising neuromuscular blocker",)),
        ("Use cooling rather than dantrolene.", ("cooling",)),
        ("Dantrolene and cooling are the treatment.", ("dantrolene", "cooling")),
    ],
    ids=["not-before", "do-not", "list-then-are-not", "avoid", "rather-than", "no-negation"],
)
def test_negated_mentions_left_out(table: TermTable, text: str, terms: tuple[str, ...]) -> None:
    assert read_answer(text, table).terms == terms


def test_terms_need_whole_words(table: TermTable) -> None:
    assert read_answer("The coolant in the icebox is cold.", table).terms == ()


def test_rewording_is_not_a_change(table: TermTable) -> None:
    baseline = read_answer("Give dantrolene 2.5 mg/kg IV rapidly.", table)
    reworded = read_answer("The treatment is dantrolene, 2.5mg/kg, by rapid IV injection.", table)
    assert answer_changes(baseline, reworded) == []


def test_changed_drug_is_a_change(table: TermTable) -> None:
    baseline = read_answer("Give dantrolene 2.5 mg/kg IV.", table)
    other = read_answer("Cool the patient with ice packs.", table)
    assert answer_changes(baseline, other) == [
        "first drug or action: dantrolene -> cooling",
        "drugs: {dantrolene} -> none",
        "first dose: 2.5mg/kg -> none",
    ]


def test_changed_dose_is_a_change(table: TermTable) -> None:
    baseline = read_answer("Dantrolene 2.5 mg/kg.", table)
    other = read_answer("Dantrolene 1 mg/kg.", table)
    assert answer_changes(baseline, other) == ["first dose: 2.5mg/kg -> 1mg/kg"]


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ('{"protocols": ["heat-stroke"]}', ("heat-stroke",)),
        ('{"protocols": ["heat-stroke", "heat-stroke", "malignant-hyperthermia"]}', ("heat-stroke", "malignant-hyperthermia")),
        ('{"protocols": []}', ()),
        ('Sure: {"protocols": ["unknown-id", "heat-stroke"]} done', ("heat-stroke",)),
        ('{"protocols": ["neuroleptic-malignant-syndrome", "malignant-hyp', ("neuroleptic-malignant-syndrome",)),
        ("I cannot decide.", ()),
    ],
    ids=["plain", "duplicates", "empty", "unknown-id-dropped", "unclosed", "no-json"],
)
def test_read_choice(text: str, chosen: tuple[str, ...]) -> None:
    assert read_choice(text, CANDIDATES) == chosen


def test_choice_order_is_not_a_change() -> None:
    assert choice_changes(("heat-stroke", "malignant-hyperthermia"), ("malignant-hyperthermia", "heat-stroke")) == []


def test_choice_change_described() -> None:
    assert choice_changes(("heat-stroke",), ()) == ["chosen protocols: ['heat-stroke'] -> none"]


def test_choice_finished_at_closing_bracket() -> None:
    assert not choice_finished('{"protocols": ["heat')
    assert choice_finished('{"protocols": ["heat-stroke"]')


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("", True),
        ('{"protocols": [', True),
        ('{"protocols": ["heat', True),
        ('{"protocols": ["heat-stroke", ', True),
        ('{"protocols": ["heat-stroke"]}', True),
        ('{"protocols": []}', True),
        ("```json", False),
        ('{"protocols": ["heat-stroke", "heat', False),
        ('{"protocols": ["unknown', False),
        ('{"protocols": ["heat-stroke"]} and more', False),
    ],
    ids=["empty", "head", "partial-id", "after-comma", "closed", "empty-list", "code-fence", "repeated-id", "unknown-id", "trailing-text"],
)
def test_is_choice_prefix(text: str, valid: bool) -> None:
    assert is_choice_prefix(text, CANDIDATES) is valid
