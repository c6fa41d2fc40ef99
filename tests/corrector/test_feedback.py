"""Recording feedback: flags, the interactive form, validation against the answer and library, --propose."""

from __future__ import annotations

import pytest

from corrector.store import get_feedback
from tests.corrector.conftest import MISROUTED_QUERY, answer, invoke, invoke_json


def test_feedback_with_flags_is_stored(library):
    record = answer(library, MISROUTED_QUERY)
    data = invoke_json(
        "feedback", record.id, "--kind", "wrong-protocol", "--expected", "beta", "--comment", "tick-borne", "--author", "Dr Lee"
    )
    assert data["answer_id"] == record.id
    assert data["expected"] == ["beta"]
    assert data["proposal"] is None
    stored = get_feedback(data["feedback_id"])
    assert (stored.kind, stored.comment, stored.author) == ("wrong-protocol", "tick-borne", "Dr Lee")


def test_feedback_form_asks_for_missing_fields(library):
    record = answer(library, MISROUTED_QUERY)
    result = invoke("feedback", record.id[:8], "--json", input="wrong\nwrong-protocol\nbeta, gamma\nneeds both\n")
    assert result.exit_code == 0, result.output
    assert "What was wrong (wrong-protocol, wrong-content, missing-protocol):" in result.stderr
    assert result.stderr.count("What was wrong (") == 2  # "wrong" is not a kind, so the form prompts again
    assert "It used: alpha" in result.stderr
    assert '"expected": [\n    "beta",\n    "gamma"\n  ]' in result.stdout


def test_feedback_form_defaults_content_to_cited_protocol(library):
    record = answer(library, MISROUTED_QUERY)
    result = invoke("feedback", record.id, "--kind", "wrong-content", "--json", input="\nthe dose is 2 mg/kg\n")
    assert result.exit_code == 0, result.output
    assert "Protocol whose text was wrong [alpha]:" in result.stderr
    assert '"expected": [\n    "alpha"\n  ]' in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "wrong-protocol", "--expected", "omega", "--comment", "x"), "unknown protocol ids ['omega'] in --expected; known ids: alpha, beta, delta, gamma"),
        (("--kind", "wrong-protocol", "--expected", "alpha", "--comment", "x"), "the answer already used alpha: if its text was wrong, use --kind wrong-content"),
        (("--kind", "wrong-content", "--expected", "alpha", "--comment", " "), "wrong-content feedback needs --comment"),
        (("--kind", "missing-protocol", "--expected", "beta", "--comment", "x"), "protocol 'beta' already exists"),
        (("--kind", "missing-protocol", "--expected", "Bad Id", "--comment", "x"), "'Bad Id' is not a valid protocol id"),
        (("--kind", "missing-protocol", "--expected", "a,b", "--comment", "x"), "needs exactly one --expected id"),
    ],
    ids=["unknown-id", "same-as-answer", "content-without-comment", "missing-exists", "missing-bad-id", "missing-two-ids"],
)
def test_feedback_invalid_is_rejected(library, args, message):
    record = answer(library, MISROUTED_QUERY)
    result = invoke("feedback", record.id, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_feedback_unknown_answer(library):
    result = invoke("feedback", "abcdef012345", "--kind", "wrong-protocol", "--expected", "beta", "--comment", "x")
    assert result.exit_code == 1
    assert "no answer with id 'abcdef012345'" in result.stderr


def test_feedback_propose_creates_proposal(library):
    record = answer(library, MISROUTED_QUERY)
    data = invoke_json(
        "feedback", record.id, "--kind", "wrong-protocol", "--expected", "beta", "--comment", "x", "--propose", "--library", str(library)
    )
    assert data["proposal"]["feedback_id"] == data["feedback_id"]
    assert data["proposal"]["status"] == "pending"
    assert data["proposal"]["replay"]["counts"]["fixed"] == 1
