"""Review, approval and rejection through the CLI: branch edits, prompts, broken cases, rejected branches."""

from __future__ import annotations

from pathlib import Path

import git

from router.library import load_library
from tests.corrector.conftest import MISROUTED_QUERY, git as run_git, invoke, invoke_json, propose, repo_state, write_cases


def commit_on_branch(library: Path, branch: str, tmp_path: Path, name: str, edit) -> str:  # type: ignore[no-untyped-def]
    """Edit one file on a proposal branch with ordinary git, in a separate worktree, and commit it."""
    worktree = tmp_path / "edit-worktree"
    run_git(library, "worktree", "add", "--quiet", str(worktree), branch)
    file = worktree / name
    file.write_text(edit(file.read_text()))
    run_git(worktree, "commit", "--quiet", "-am", "Edit the proposal by hand")
    sha = run_git(worktree, "rev-parse", "HEAD").strip()
    run_git(library, "worktree", "remove", str(worktree))
    return sha


def test_review_shows_diff_feedback_analysis_and_replay(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    result = invoke("review", proposal["proposal_id"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"Proposal {proposal['proposal_id']} (pending), branch {proposal['branch']}" in lines[0]
    assert "  answer used: alpha; expected: beta" in lines
    assert "  - beta: new keyword rule {all: [rash, hiking], weight: 2}." in lines
    assert any(line.startswith("  FIXED     feedback:") for line in lines)
    assert "+  - {all: [rash, hiking], weight: 2}" in lines
    assert "diff --git a/beta.md b/beta.md" in lines


def test_approve_uses_edited_branch_tip(library, tmp_path):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    tip = commit_on_branch(
        library, proposal["branch"], tmp_path, "beta.md", lambda text: text.replace("weight: 2}", "weight: 3}")
    )

    review = invoke_json("review", proposal["proposal_id"])
    assert review["branch_tip"] == tip
    assert "+  - {all: [rash, hiking], weight: 3}" in review["diff"]

    approval = invoke_json("approve", proposal["proposal_id"], "--yes")
    assert approval["branch_tip"] == tip
    text = (library / "beta.md").read_text()
    assert "{all: [rash, hiking], weight: 3}" in text
    assert 'version: "1.1"' in text
    assert git.Repo(library).head.commit.parents[1].hexsha == tip


def test_approve_keeps_version_set_on_branch(library, tmp_path):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    commit_on_branch(library, proposal["branch"], tmp_path, "beta.md", lambda text: text.replace('version: "1.0"', 'version: "2.0"'))
    approval = invoke_json("approve", proposal["proposal_id"], "--yes")
    assert approval["versions"]["beta"] == {"before": "1.0", "after": "2.0"}
    assert approval["versions"]["alpha"] == {"before": "1.0", "after": "1.1"}


def test_approve_rejects_invalid_branch_edit(library, tmp_path):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    commit_on_branch(library, proposal["branch"], tmp_path, "beta.md", lambda text: text.replace("owner: test team", "owner:\ttest team"))
    before = repo_state(library)

    result = invoke("approve", proposal["proposal_id"], "--yes")

    assert result.exit_code == 1, result.output
    assert "fails 'protocol check' with 2 new errors, so nothing was written" in result.stderr
    assert f"{library / 'alpha.md'}:" in result.stderr
    assert "confusable_with names unknown id 'beta'" in result.stderr  # beta no longer parses
    assert "files left out for errors, which may define it: beta.md" in result.stderr
    assert f"{library / 'beta.md'}:6: tab character in the front matter" in result.stderr
    assert repo_state(library) == before


def test_approve_refuses_to_break_cases_unless_allowed(library, tmp_path):
    # This case contradicts the feedback (same query, other protocol), so every fix breaks it.
    cases = write_cases(tmp_path / "cases.jsonl", [{"id": "alpha-contradiction", "query": MISROUTED_QUERY, "expected": ["alpha"]}])
    proposal = propose(library, MISROUTED_QUERY, "beta", "--cases", str(cases))
    assert [case["id"] for case in proposal["replay"]["cases"] if case["change"] == "broken"] == ["alpha-contradiction"]
    before = repo_state(library)

    refused = invoke("approve", proposal["proposal_id"], "--yes", "--cases", str(cases))
    assert refused.exit_code == 1, refused.output
    assert "would break 1 cases that pass now (alpha-contradiction)" in refused.stderr
    assert "--allow-broken" in refused.stderr
    assert repo_state(library) == before

    approval = invoke_json("approve", proposal["proposal_id"], "--yes", "--cases", str(cases), "--allow-broken")
    assert approval["replay"]["counts"]["broken"] == 1


def test_approve_prompt_declined_changes_nothing(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    before = repo_state(library)
    result = invoke("approve", proposal["proposal_id"], input="n\n")
    assert result.exit_code == 1
    assert "Approve and merge? [y/N]" in result.stderr
    assert "alpha: version 1.0 -> 1.1" in result.stderr
    assert repo_state(library) == before


def test_approve_prompt_accepted_with_reviewer_option(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    result = invoke("approve", proposal["proposal_id"], "--reviewer", "Dr Ada Reviewer <ada@example.org>", input="y\n")
    assert result.exit_code == 0, result.output
    message = git.Repo(library).head.commit.message
    assert "Reviewed-by: Dr Ada Reviewer <ada@example.org>" in message
    assert load_library(library).get("beta").meta.approved_by == "Dr Ada Reviewer"


def test_approve_twice_is_refused(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    invoke_json("approve", proposal["proposal_id"], "--yes")
    again = invoke("approve", proposal["proposal_id"], "--yes")
    assert again.exit_code == 1
    assert "was already approved" in again.stderr


def test_reject_keeps_branch_and_reason(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    before_files = repo_state(library).files
    rejected = invoke_json("reject", proposal["proposal_id"], "--reason", "rash terms are too broad", "--yes")

    repo = git.Repo(library)
    new_branch = proposal["branch"].replace("proposal/", "rejected/", 1)
    assert rejected["branch"] == new_branch
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "rash terms are too broad"
    assert rejected["reviewer"]
    assert repo.commit(new_branch).hexsha == repo.commit(rejected["proposed_commit"]).hexsha
    assert proposal["branch"] not in [head.name for head in repo.heads]
    assert "rash terms are too broad" in run_git(library, "reflog", "show", new_branch)
    assert repo_state(library).files == before_files
    assert invoke_json("review") == []
    shown = invoke_json("review", proposal["proposal_id"])
    assert shown["status"] == "rejected"
    assert "+  - {all: [rash, hiking], weight: 2}" in shown["diff"]


def test_reject_asks_for_reason(library):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    result = invoke("reject", proposal["proposal_id"], "--json", input="duplicate of another proposal\ny\n")
    assert result.exit_code == 0, result.output
    assert "Reason for rejecting" in result.stderr
    assert '"reason": "duplicate of another proposal"' in result.stdout


def test_review_unknown_proposal_is_clear_error(library):
    result = invoke("review", "abcd1234")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no proposal with id 'abcd1234'")
    invalid = invoke("review", "50%")
    assert invalid.exit_code == 1
    assert invalid.stderr.startswith("Error: invalid proposal id '50%'")


def test_review_with_other_library_is_refused(library, tmp_path):
    from tests.conftest import protocol_text, write_library

    other = write_library(tmp_path / "other", {"alpha.md": protocol_text("alpha")}, commit=True)
    proposal = propose(library, MISROUTED_QUERY, "beta")
    result = invoke("review", proposal["proposal_id"], "--library", str(other))
    assert result.exit_code == 1
    assert f"belongs to the library in {library}" in result.stderr


def test_approve_without_reviewer_identity_is_refused(library, tmp_path, monkeypatch):
    proposal = propose(library, MISROUTED_QUERY, "beta")
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))  # no ~/.gitconfig, so no user.name
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty-home"))
    before = repo_state(library)
    result = invoke("approve", proposal["proposal_id"], "--yes")
    assert result.exit_code == 1, result.output
    assert 'no reviewer: pass --reviewer "Name <email>" or set git config user.name and user.email' in result.stderr
    assert repo_state(library) == before
