"""Routing analysis: discriminating terms and the smallest edit that routes a query to the expected protocol."""

from __future__ import annotations

import pytest

from corrector.errors import ProposalError
from corrector.routingfix import draft_routing_change, route_with_rules
from corrector.workspace import library_from_texts
from router.evaluate import Case
from tests.corrector.conftest import MISROUTED_QUERY, routing_files


@pytest.fixture
def texts():
    return routing_files()


def draft(texts, query, expected, recorded, tmp_path):  # type: ignore[no-untyped-def]
    library = library_from_texts(tmp_path, texts)
    names = {pid: f"{pid}.md" for pid in library.protocols}
    return draft_routing_change(query, expected, recorded, library, texts, names)


def test_draft_routes_query_to_expected(texts, tmp_path):
    result = draft(texts, MISROUTED_QUERY, ["beta"], ["alpha"], tmp_path)
    assert sorted(result.texts) == ["alpha.md", "beta.md"]
    assert result.summary == "Route to beta instead of alpha"
    assert result.analysis[1] == "Expected: beta. Candidate query terms: 'rash', 'hiking', 'woods'."
    edited = library_from_texts(tmp_path, {**texts, **result.texts})
    outcome, _, _ = route_with_rules(MISROUTED_QUERY, edited)
    assert outcome.chosen == ["beta"]
    assert edited.get("alpha").meta.confusable_with == ["beta"]
    assert edited.get("beta").meta.confusable_with == ["alpha"]


def test_draft_adds_none_term(texts, tmp_path):
    # alpha fires twice (fever and pyrexia), so beta's new rule alone cannot outscore it below weight 3.
    texts["alpha.md"] = texts["alpha.md"].replace("any: [fever]", "any: [fever, pyrexia]\n  - all: [fever]\n    weight: 3")
    result = draft(texts, MISROUTED_QUERY, ["beta"], ["alpha"], tmp_path)
    assert any("alpha: none term 'rash' on keyword rule 1, 2" in line for line in result.analysis)
    outcome, _, _ = route_with_rules(MISROUTED_QUERY, library_from_texts(tmp_path, {**texts, **result.texts}))
    assert outcome.chosen == ["beta"]


def test_draft_without_discriminating_term_fails(texts, tmp_path):
    with pytest.raises(ProposalError, match="no word of the query tells beta apart from alpha"):
        draft(texts, "fever after a day", ["beta"], ["alpha"], tmp_path)


def test_guard_cases_steer_the_choice_of_terms(texts, tmp_path):
    guard = [Case(id="alpha-heat-rash", query="fever and heat rash after hiking", expected=["alpha"])]
    library = library_from_texts(tmp_path, texts)
    names = {pid: f"{pid}.md" for pid in library.protocols}
    result = draft_routing_change(MISROUTED_QUERY, ["beta"], ["alpha"], library, texts, names, guard)
    assert "beta: new keyword rule {all: [rash, woods], weight: 2}." in result.analysis
    assert result.analysis[-2] == "Of 2 changes that fix the query, this one breaks the fewest of 1 evaluation cases and example queries with the rules: 0."


def test_words_added_by_normalisation_are_not_terms(texts, tmp_path):
    # "temp 41" makes the normaliser add "temperature", "hyperthermia" and "fever"; none of them was typed.
    result = draft(texts, "temp 41 with a rash after hiking", ["beta"], ["alpha"], tmp_path)
    assert result.analysis[1] == "Expected: beta. Candidate query terms: 'temp', 'rash', 'hiking'."


def test_generic_words_are_not_terms(texts, tmp_path):
    result = draft(texts, "fever days after hiking, now rash", ["beta"], ["alpha"], tmp_path)
    assert result.analysis[1] == "Expected: beta. Candidate query terms: 'hiking', 'rash'."
