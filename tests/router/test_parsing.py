"""Tests of the protocol file format: every kind of malformed file gets path:line: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.parsing import parse_protocol
from tests.conftest import protocol_text


def parse(text: str):
    return parse_protocol(Path("demo.md"), text, "demo.md")


def messages(text: str) -> list[str]:
    protocol, problems = parse(text)
    assert protocol is None, "expected the file to be rejected"
    return [str(problem) for problem in problems]


def test_valid_protocol_parses_key_actions():
    protocol, problems = parse(protocol_text())
    assert problems == []
    assert protocol is not None
    assert [action.number for action in protocol.key_actions] == [1, 2]
    assert protocol.key_actions[1].drug == "demodrug"
    assert protocol.key_actions[1].dose == "1 mg/kg"
    assert protocol.drugs == ["demodrug"]
    assert protocol.key_actions_text.startswith("1. Do the first thing.")


def test_version_stays_a_string_with_trailing_zero():
    protocol, _ = parse(protocol_text(version='"1.10"'))
    assert protocol is not None
    assert protocol.meta.version == "1.10"


def test_unquoted_version_rejected_with_fix():
    found = messages(protocol_text(version="1.10"))
    assert any("demo.md:4:" in message and "version must be a quoted string" in message for message in found), found


def test_no_stays_string_in_abbreviation():
    text = protocol_text(abbreviations="\n  - short: NO\n    expansion: nitric oxide")
    protocol, problems = parse(text)
    assert problems == []
    assert protocol is not None
    assert protocol.meta.abbreviations[0].short == "NO"


def test_tab_rejected_with_line():
    text = protocol_text().replace("owner: test team", "owner:\ttest team")
    found = messages(text)
    assert found == ["demo.md:6: tab character in the front matter: indent YAML with spaces"]


def test_duplicate_key_reports_both_lines():
    text = protocol_text().replace("owner: test team", "owner: test team\nowner: other team")
    found = messages(text)
    assert len(found) == 1
    assert found[0].startswith("demo.md:7: duplicate key 'owner' (also on line 6)")


def test_unknown_key_rejected_with_line():
    text = protocol_text(dose="5 mg")
    found = messages(text)
    assert any(message.startswith("demo.md:") and "unknown key 'dose'" in message for message in found), found


def test_missing_required_key_named():
    text = protocol_text(owner=None)
    found = messages(text)
    assert any("missing required key 'owner'" in message for message in found), found


def test_unsafe_id_rejected():
    found = messages(protocol_text("../etc/passwd"))
    assert any("not a safe file name" in message for message in found), found


def test_invalid_yaml_reports_line():
    text = protocol_text().replace("status: active", "status: [active")
    found = messages(text)
    assert found
    assert found[0].startswith("demo.md:")
    assert "invalid YAML" in found[0]


def test_missing_front_matter_rejected():
    assert messages("# Just markdown\n") == [
        "demo.md:1: missing front matter: the file must start with a '---' line"
    ]


def test_unclosed_front_matter_rejected():
    found = messages("---\nid: x\n")
    assert "front matter is not closed" in found[0]


def test_missing_section_rejected():
    text = protocol_text().replace("## Contraindications", "## Cautions")
    found = messages(text)
    assert any("missing section '## Contraindications'" in message for message in found), found


def test_drug_action_without_dose_rejected():
    text = protocol_text().replace("   - dose: 1 mg/kg\n", "")
    found = messages(text)
    assert any("lacks dose" in message for message in found), found


def test_source_needs_url_or_doi():
    text = protocol_text(sources='\n  - title: "A source without a locator"\n    licence: CC BY 4.0')
    found = messages(text)
    assert any("a source needs a url or a doi" in message for message in found), found


@pytest.mark.parametrize(
    "rule",
    ["\n  - none: [x]", "\n  - {}"],
    ids=["only-none-terms", "empty-rule"],
)
def test_keyword_rule_needs_positive_terms(rule):
    found = messages(protocol_text(keywords=rule))
    assert any("keywords.0" in message for message in found), found


def test_second_dose_line_rejected():
    text = protocol_text().replace("   - dose: 1 mg/kg\n", "   - dose: 10 mg/kg\n   - dose: 1 mg/kg\n")
    found = messages(text)
    assert any("has a second 'dose:' line" in message for message in found), found


def test_impossible_date_is_problem_not_crash():
    found = messages(protocol_text(review_due="2027-02-30"))
    assert found == ["demo.md:8: invalid date '2027-02-30' for review_due: use a real date as YYYY-MM-DD"]


def test_control_character_rejected_with_line():
    found = messages(protocol_text().replace("Do the first thing.", "Do the \x1b[2J first thing."))
    assert any("control character U+001B" in message for message in found), found


def test_byte_order_mark_accepted():
    protocol, problems = parse("\ufeff" + protocol_text())
    assert problems == []
    assert protocol is not None


def test_review_before_last_reviewed_names_line():
    found = messages(protocol_text(last_reviewed="2026-06-01", review_due="2026-01-01"))
    assert found == ["demo.md:8: invalid review_due: 2026-01-01 is earlier than last_reviewed 2026-06-01: set the next review after the last one"]


def test_wrong_type_message_gives_fix():
    found = messages(protocol_text(aliases="just one alias"))
    assert len(found) == 1
    assert found[0].startswith("demo.md:15: invalid aliases: Input should be a valid list: write a YAML list")


def test_key_lines_recorded():
    protocol, _ = parse_protocol(Path("demo.md"), protocol_text())
    assert protocol is not None
    assert protocol.key_lines["id"] == 2
    assert protocol.key_lines["review_due"] == 8
