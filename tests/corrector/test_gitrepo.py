"""Git plumbing on real repositories: trees and commits without the index, refs, merges, locks."""

from __future__ import annotations

import git
import pytest

from corrector.errors import LockTimeout, MergeConflict, RepositoryError, ReviewerUnknown
from corrector.gitrepo import TOOL_IDENTITY, Identity, LibraryRepo
from tests.corrector.conftest import git as run_git, repo_state


def test_build_tree_and_commit_leave_index_and_worktree(library):
    repo = LibraryRepo.open(library)
    before = repo_state(library)
    head = repo.text("rev-parse", "HEAD")

    tree = repo.build_tree(head, {"alpha.md": b"new alpha\n", "sub/new.md": b"new file\n"})
    commit = repo.commit_tree(tree, [head], "Test commit\n\nBody.\n", TOOL_IDENTITY, TOOL_IDENTITY)

    assert repo_state(library) == before
    assert repo.read_blob(commit, "alpha.md") == b"new alpha\n"
    assert repo.read_blob(commit, "sub/new.md") == b"new file\n"
    assert repo.read_blob(commit, "beta.md") == repo.read_blob(head, "beta.md")
    assert repo.changed_paths(head, commit) == ["alpha.md", "sub/new.md"]
    assert git.Repo(library).commit(commit).author.name == "protocol-router"


def test_create_ref_refuses_existing(library):
    repo = LibraryRepo.open(library)
    head = repo.text("rev-parse", "HEAD")
    repo.create_ref("refs/heads/proposal/x", head, "test")
    with pytest.raises(RepositoryError, match="cannot create refs/heads/proposal/x"):
        repo.create_ref("refs/heads/proposal/x", head, "test")


def test_move_ref_detects_a_moved_branch(library):
    repo = LibraryRepo.open(library)
    head = repo.text("rev-parse", "HEAD")
    other = repo.commit_tree(repo.text("rev-parse", "HEAD^{tree}"), [head], "Other", TOOL_IDENTITY, TOOL_IDENTITY)
    with pytest.raises(RepositoryError, match="moved while it was being updated"):
        repo.move_ref("refs/heads/main", head, other, "test")
    assert repo.branch_tip("main") == head


def test_merge_trees_reports_conflicting_paths(library):
    repo = LibraryRepo.open(library)
    head = repo.text("rev-parse", "HEAD")
    left = repo.commit_tree(repo.build_tree(head, {"alpha.md": b"left\n"}), [head], "Left", TOOL_IDENTITY, TOOL_IDENTITY)
    right = repo.commit_tree(repo.build_tree(head, {"alpha.md": b"right\n", "beta.md": b"b\n"}), [head], "Right", TOOL_IDENTITY, TOOL_IDENTITY)
    with pytest.raises(MergeConflict) as caught:
        repo.merge_trees(left, right)
    assert caught.value.paths == ["alpha.md"]


def test_lock_times_out_while_held(library):
    repo = LibraryRepo.open(library)
    with repo.lock():
        other = LibraryRepo.open(library)
        with pytest.raises(LockTimeout, match="wait for it to finish"):
            with other.lock(wait_seconds=0.2):
                pass
    with repo.lock(wait_seconds=0.2):
        pass  # released again


def test_open_outside_git_is_clear(tmp_path):
    with pytest.raises(RepositoryError, match="is not in a git repository: run 'git init'"):
        LibraryRepo.open(tmp_path)


@pytest.mark.parametrize("text", ["Ada", "ada@example.org", "Ada <>", "<ada@example.org>"], ids=["name-only", "email-only", "empty-email", "empty-name"])
def test_identity_parse_rejects_incomplete(text):
    with pytest.raises(ReviewerUnknown, match="Name <email>"):
        Identity.parse(text)


def test_index_entry_and_worktree_blob(library):
    repo = LibraryRepo.open(library)
    committed = repo.blob_sha("HEAD", "alpha.md")
    assert repo.index_entry("alpha.md") == committed
    assert repo.worktree_blob("alpha.md") == committed
    (library / "alpha.md").write_text("changed\n")
    assert repo.worktree_blob("alpha.md") != committed
    run_git(library, "add", "alpha.md")
    assert repo.index_entry("alpha.md") == repo.worktree_blob("alpha.md")
    assert repo.index_entry("missing.md") is None
