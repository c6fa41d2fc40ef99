"""Tests of library loading and whole-library checks, on real git repositories in tmp_path."""

from __future__ import annotations

import datetime as dt

import git
import pytest

from router.errors import LibraryError
from router.library import load_library
from tests.conftest import STARTER, protocol_text, write_library

STARTER_IDS = {
    "malignant-hyperthermia", "heat-stroke", "neuroleptic-malignant-syndrome", "serotonin-syndrome",
    "anaphylaxis", "diabetic-ketoacidosis", "hyperosmolar-hyperglycemic-state", "hyperkalemia",
    "heparin-reversal", "warfarin-reversal", "status-epilepticus", "pheochromocytoma-preop", "sepsis",
    "opioid-overdose", "stroke-thrombolysis", "local-anesthetic-toxicity",
}
CONFUSABLE_PAIRS = [
    ("malignant-hyperthermia", "heat-stroke"),
    ("malignant-hyperthermia", "neuroleptic-malignant-syndrome"),
    ("malignant-hyperthermia", "serotonin-syndrome"),
    ("heat-stroke", "neuroleptic-malignant-syndrome"),
    ("neuroleptic-malignant-syndrome", "serotonin-syndrome"),
    ("diabetic-ketoacidosis", "hyperosmolar-hyperglycemic-state"),
    ("heparin-reversal", "warfarin-reversal"),
]


def test_starter_library_is_valid_and_complete():
    library = load_library(STARTER)
    assert library.errors == []
    assert STARTER_IDS <= set(library.protocols)


@pytest.mark.parametrize("pair", CONFUSABLE_PAIRS, ids=lambda pair: "/".join(pair))
def test_starter_confusable_pairs_name_each_other(pair):
    library = load_library(STARTER)
    left, right = pair
    assert right in library.protocols[left].meta.confusable_with
    assert left in library.protocols[right].meta.confusable_with


def test_starter_protocols_are_marked_demonstration_and_cited():
    library = load_library(STARTER)
    for protocol in library.protocols.values():
        assert protocol.meta.demonstration, protocol.id
        assert protocol.meta.sources, protocol.id


def test_missing_folder_raises_with_fix(tmp_path):
    with pytest.raises(LibraryError, match="does not exist: pass --library"):
        load_library(tmp_path / "nowhere")


def test_empty_folder_raises_with_fix(tmp_path):
    with pytest.raises(LibraryError, match="contains no protocol files"):
        load_library(tmp_path)


def test_broken_file_left_out_others_kept(tmp_path):
    folder = write_library(tmp_path / "lib", {"good.md": protocol_text("good"), "bad.md": "---\nid: [\n---\n"})
    library = load_library(folder)
    assert set(library.protocols) == {"good"}
    assert [problem.path.endswith("bad.md") for problem in library.errors] == [True]


def test_duplicate_ids_reported(tmp_path):
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("same"), "b.md": protocol_text("same")})
    library = load_library(folder)
    assert any("duplicate id 'same'" in problem.message for problem in library.errors)


def test_unknown_confusable_reported(tmp_path):
    folder = write_library(tmp_path / "lib", {"one.md": protocol_text("one", confusable_with="[ghost]")})
    library = load_library(folder)
    assert any("unknown id 'ghost'" in problem.message for problem in library.errors)


def test_past_review_due_is_warning(tmp_path):
    folder = write_library(tmp_path / "lib", {"one.md": protocol_text("one", review_due="2026-06-01")})
    library = load_library(folder, today=dt.date(2026, 12, 4))
    assert library.errors == []
    warnings = [problem for problem in library.problems if problem.severity == "warning"]
    assert any("review_due 2026-06-01 is in the past" in problem.message for problem in warnings)


def test_shared_alias_reported(tmp_path):
    files = {
        "one.md": protocol_text("one", aliases="[shared name]"),
        "two.md": protocol_text("two", aliases="[Shared Name]"),
    }
    library = load_library(write_library(tmp_path / "lib", files))
    assert any("alias 'shared name' is also used by 'one'" in problem.message for problem in library.errors)


def test_outside_git_has_no_commit(tmp_path):
    library = load_library(write_library(tmp_path / "lib", {"one.md": protocol_text("one")}))
    assert library.git is None
    assert library.commit_of("one") is None


def test_committed_file_cites_head_commit(tmp_path):
    folder = write_library(tmp_path / "lib", {"one.md": protocol_text("one")}, commit=True)
    library = load_library(folder)
    head = git.Repo(folder).head.commit
    assert library.commit_of("one") == head.hexsha
    assert library.protocols["one"].blob_sha == (head.tree / "one.md").hexsha


def test_uncommitted_edit_is_not_cited_as_committed(tmp_path):
    folder = write_library(tmp_path / "lib", {"one.md": protocol_text("one")}, commit=True)
    (folder / "one.md").write_text(protocol_text("one", title="Edited title"), encoding="utf-8")
    library = load_library(folder)
    assert library.commit_of("one") is None
    assert "one" in library.uncommitted


def test_file_order_does_not_change_ids(tmp_path):
    names = {f"p{number}.md": protocol_text(f"p{number}") for number in range(5)}
    library = load_library(write_library(tmp_path / "lib", names))
    assert list(library.protocols) == sorted(library.protocols)
