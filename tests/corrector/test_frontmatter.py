"""Front-matter edits that change only the lines of the keys that changed, and version bumps."""

from __future__ import annotations

import datetime as dt
import difflib

import pytest

from corrector.errors import ProposalError
from corrector.frontmatter import bump_version, edit_front_matter, review_edit
from corrector.routingfix import add_keyword_rule, add_none_term, link_confusable
from router.parsing import parse_protocol
from tests.conftest import STARTER, protocol_text

ANCHORED = protocol_text(
    "alpha",
    approved_by="null",
    keywords="\n  - all: [rigid]\n    any: &triggers [sevoflurane, volatile]\n    none: &drugs [haloperidol]\n  - {all: [fever], any: *triggers, none: *drugs}",
)


def changed_lines(old: str, new: str) -> list[str]:
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", "1.1"), ("1.9", "1.10"), ("2", "2.1"), ("2024.03.7", "2024.03.8"), ("v3", "v4")],
    ids=["minor", "past-nine", "major-only", "three-parts", "prefixed"],
)
def test_bump_version(version, expected):
    assert bump_version(version) == expected


def test_bump_version_without_number_fails():
    with pytest.raises(ProposalError, match="does not end in a number"):
        bump_version("draft")


def test_unchanged_edit_returns_same_text():
    assert edit_front_matter(ANCHORED, lambda data: None) == ANCHORED


def test_review_edit_is_one_line_per_key():
    new = edit_front_matter(ANCHORED, review_edit(dt.date(2026, 12, 4), "Ada Reviewer", bump=True))
    assert sorted(changed_lines(ANCHORED, new)) == sorted([
        '-version: "1.0"',
        '+version: "1.1"',
        "-approved_by: null",
        "+approved_by: Ada Reviewer",
        "-last_reviewed: 2026-01-01",
        "+last_reviewed: 2026-12-04",
    ])


def test_review_edit_moves_past_review_due():
    text = protocol_text("alpha", last_reviewed="2024-01-01", review_due="2025-01-01")
    new = edit_front_matter(text, review_edit(dt.date(2026, 12, 4), None, bump=False))
    protocol, problems = parse_protocol("alpha.md", new)  # type: ignore[arg-type]
    assert problems == []
    assert protocol is not None
    assert protocol.meta.last_reviewed == dt.date(2026, 12, 4)
    assert protocol.meta.review_due == dt.date(2027, 12, 5)  # the old interval (366 days in 2024), from today
    assert protocol.meta.version == "1.0"


def test_new_rule_adds_one_line():
    new = add_keyword_rule(ANCHORED, ["rash", "hiking"], 2.0)
    assert changed_lines(ANCHORED, new) == ["+  - {all: [rash, hiking], weight: 2}"]


def test_none_term_copies_a_shared_alias():
    new = add_none_term(ANCHORED, [1], "rash")
    protocol, problems = parse_protocol("alpha.md", new)  # type: ignore[arg-type]
    assert problems == []
    assert protocol is not None
    assert protocol.meta.keywords[1].none == ["haloperidol", "rash"]
    assert protocol.meta.keywords[0].none == ["haloperidol"]  # the anchored list itself is unchanged
    assert protocol.meta.keywords[1].any == ["sevoflurane", "volatile"]


def test_confusable_link_added_as_new_key_then_extended():
    once = link_confusable(ANCHORED, "beta")
    assert changed_lines(ANCHORED, once) == ["+confusable_with: [beta]"]
    twice = link_confusable(once, "gamma")
    assert changed_lines(once, twice) == ["-confusable_with: [beta]", "+confusable_with: [beta, gamma]"]


def test_starter_protocol_round_trip_keeps_every_line():
    for path in sorted(STARTER.glob("*.md")):
        if path.name in ("README.md", "TEMPLATE.md"):
            continue
        text = path.read_text(encoding="utf-8")
        new = edit_front_matter(text, review_edit(dt.date(2026, 12, 4), None, bump=True))
        assert [line for line in changed_lines(text, new) if not line[1:].startswith(("version:", "last_reviewed:", "review_due:"))] == [], path.name
