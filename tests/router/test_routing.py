"""Tests of the pre-filter: rules, phrases, spelling correction, ties, companions and no-match."""

from __future__ import annotations

import pytest

from router.library import load_library
from router.routing import RouteIndex, route_query
from tests.conftest import STARTER, protocol_text, write_library


@pytest.fixture(scope="module")
def starter_index():
    return RouteIndex(load_library(STARTER))


def ids(decision, companions: bool = False) -> list[str]:
    return [candidate.id for candidate in decision.candidates if companions or not candidate.companion]


def test_upper_case_routes_like_lower_case(starter_index):
    upper = route_query("HYPERKALEMIA K 7.1 PEAKED T WAVES", starter_index)
    lower = route_query("hyperkalemia k 7.1 peaked t waves", starter_index)
    assert ids(upper) == ids(lower)
    assert ids(upper)[0] == "hyperkalemia"
    assert [c.score for c in upper.candidates] == [c.score for c in lower.candidates]


@pytest.mark.parametrize("query", ["", "   ", "???", "\n\n", "x", "the of and"], ids=["empty", "spaces", "punctuation", "newlines", "letter", "stopwords"])
def test_junk_has_no_candidates(starter_index, query):
    decision = route_query(query, starter_index)
    assert decision.no_match
    assert decision.rule_choice == []


def test_lone_k_is_potassium_not_vitamin_k(starter_index):
    decision = route_query("K 7.2, peaked T's", starter_index)
    assert ids(decision)[0] == "hyperkalemia"
    assert "warfarin-reversal" not in decision.rule_choice


def test_hypokalaemia_never_reaches_hyperkalemia(starter_index):
    decision = route_query("hypokalaemia 2.9 on furosemide, replace how fast?", starter_index)
    assert "hyperkalemia" not in ids(decision)


def test_misspelt_drug_is_corrected(starter_index):
    decision = route_query("dantroline dose?", starter_index)
    assert ids(decision)[0] == "malignant-hyperthermia"
    assert any("read 'dantroline' as 'dantrolene'" in reason for reason in decision.candidates[0].reasons)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("EpiPen given, still wheezing", "anaphylaxis"), ("Narcan dose", "opioid-overdose"), ("tPA window?", "stroke-thrombolysis")],
    ids=["epipen", "narcan", "tpa"],
)
def test_brand_names_route_to_generic(starter_index, query, expected):
    assert ids(route_query(query, starter_index))[0] == expected


def test_negated_findings_route_nowhere(starter_index):
    decision = route_query("no hives, no wheeze, BP normal, itchy eyes since spring", starter_index)
    assert "anaphylaxis" not in decision.rule_choice


def test_confusable_protocols_travel_together(starter_index):
    decision = route_query("32-year-old male, post-anesthesia, temperature 104F, muscle rigidity", starter_index)
    assert ids(decision)[0] == "malignant-hyperthermia"
    assert {"heat-stroke", "neuroleptic-malignant-syndrome", "serotonin-syndrome"} <= set(ids(decision, companions=True))


def test_short_query_fitting_several_is_ambiguous(starter_index):
    decision = route_query("hyperthermia?", starter_index)
    assert decision.ambiguous
    assert len(ids(decision)) >= 2


def test_ties_broken_by_id_whatever_file_order(tmp_path):
    # File names sort opposite to ids, so read order and id order differ.
    files = {
        "a-file.md": protocol_text("zeta", keywords="\n  - any: [shared finding]"),
        "z-file.md": protocol_text("alpha", keywords="\n  - any: [shared finding]"),
    }
    index = RouteIndex(load_library(write_library(tmp_path / "lib", files)))
    decision = route_query("shared finding in a long query about a patient", index)
    assert ids(decision) == ["alpha", "zeta"]
    assert decision.candidates[0].score == decision.candidates[1].score


def test_at_most_k_candidates(tmp_path):
    files = {f"p{n}.md": protocol_text(f"p{n}", keywords="\n  - any: [common finding]") for n in range(9)}
    index = RouteIndex(load_library(write_library(tmp_path / "lib", files)))
    decision = route_query("common finding seen today in clinic", index, k=3)
    assert ids(decision) == ["p0", "p1", "p2"]


def test_none_term_blocks_rule(tmp_path):
    files = {"one.md": protocol_text("one", keywords="\n  - any: [rigidity]\n    none: [olanzapine]")}
    index = RouteIndex(load_library(write_library(tmp_path / "lib", files)))
    assert ids(route_query("rigidity after surgery", index)) == ["one"]
    assert route_query("rigidity on olanzapine", index).no_match


def test_short_words_never_fuzzy_matched(tmp_path):
    files = {"one.md": protocol_text("one", keywords="\n  - any: [vitamin k]")}
    index = RouteIndex(load_library(write_library(tmp_path / "lib", files)))
    assert route_query("k", index).no_match
    assert route_query("vitamin", index).no_match


def test_repeated_keyword_does_not_explode(starter_index):
    decision = route_query("dantrolene " * 5000, starter_index)
    assert ids(decision)[0] == "malignant-hyperthermia"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("患者 发热 40 度, 肌肉僵硬", None),  # CJK only: nothing to route on, never a crash
        ("naloxone 400 µg IM, 患者 RR 4 after heroin", "opioid-overdose"),
        ("Κ+ 7.1 peaked T waves", "hyperkalemia"),  # Greek capital kappa typed for K
    ],
    ids=["cjk-only", "mixed-latin-cjk-micro", "greek-kappa"],
)
def test_mixed_scripts(starter_index, query, expected):
    decision = route_query(query, starter_index)
    if expected is None:
        assert decision.no_match
    else:
        assert ids(decision)[0] == expected


def test_only_negated_findings_is_no_match(starter_index):
    decision = route_query("no rigidity, no fever, denies seizures, rash: none", starter_index)
    assert decision.no_match
