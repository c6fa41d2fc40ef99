"""Auditor views: protocol history from git, a protocol as it was, and a past answer read back by blob SHA."""

from __future__ import annotations

import datetime as dt

import git
import pytest

from corrector.history import protocol_at
from corrector.errors import RepositoryError
from router.errors import ProtocolNotFound
from tests.conftest import protocol_text
from tests.corrector.conftest import MISROUTED_QUERY, answer, invoke, invoke_json, record_feedback


def approved_library(library):  # type: ignore[no-untyped-def]
    """Run the loop once; return the answer record, the feedback id and the approval JSON."""
    record = answer(library, MISROUTED_QUERY)
    feedback_id = record_feedback(record.id, "beta", comment="tick-borne rash")
    proposal = invoke_json("propose", feedback_id, "--library", str(library))
    approval = invoke_json("approve", proposal["proposal_id"], "--yes", "--reviewer", "Ada Reviewer <ada@example.org>")
    return record, feedback_id, proposal, approval


def test_history_lists_versions_reviewers_and_feedback(library):
    _, feedback_id, proposal, approval = approved_library(library)
    history = invoke_json("history", "beta", "--library", str(library))

    assert history["path"] == "beta.md"
    assert history["branch"] == "main"
    newest, oldest = history["entries"]
    assert newest["commit"] == approval["merge_commit"]
    assert newest["version"] == "1.1"
    assert newest["change"] == "modified"
    assert newest["author"] == "Ada Reviewer <ada@example.org>"
    assert newest["reviewed_by"] == ["Ada Reviewer <ada@example.org>"]
    assert newest["feedback_ids"] == [feedback_id]
    assert newest["proposal_ids"] == [proposal["proposal_id"]]
    assert newest["proposed_by"] == "protocol-router <protocol-router@localhost>"
    assert newest["feedback"][0]["comment"] == "tick-borne rash"
    assert oldest["version"] == "1.0"
    assert oldest["change"] == "added"
    assert oldest["author"] == "Test Author <author@example.org>"
    assert oldest["reviewed_by"] == []


def test_history_plain_output(library):
    _, feedback_id, _, _ = approved_library(library)
    result = invoke("history", "beta", "--library", str(library))
    assert result.exit_code == 0, result.output
    assert "    reviewed by Ada Reviewer <ada@example.org>" in result.stdout
    assert f"    feedback {feedback_id}: wrong-protocol on answer" in result.stdout


def test_history_unknown_id(library):
    result = invoke("history", "nosuch", "--library", str(library))
    assert result.exit_code == 1
    assert "no protocol with id 'nosuch'" in result.stderr


def test_show_at_commit_and_date(library, monkeypatch):
    repo = git.Repo(library)
    first = repo.head.commit.hexsha
    # A second commit dated a year later, so that --at can pick either by date.
    (library / "alpha.md").write_text(protocol_text("alpha", version='"2.0"', keywords="\n  - any: [fever]"))
    repo.index.add(["alpha.md"])
    later = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=400)
    author = git.Actor("Later Author", "later@example.org")
    stamp = f"{int(later.timestamp())} +0000"  # git's internal date format
    repo.index.commit("Revise alpha", author=author, committer=author, author_date=stamp, commit_date=stamp)

    assert invoke_json("show", "alpha", "--library", str(library))["meta"]["version"] == "2.0"
    at_commit = invoke_json("show", "alpha", "--library", str(library), "--at", first[:10])
    assert at_commit["meta"]["version"] == "1.0"
    assert at_commit["commit"] == first
    assert at_commit["blob_sha"] == repo.commit(first).tree["alpha.md"].hexsha

    today = dt.date.today().isoformat()
    assert invoke_json("show", "alpha", "--library", str(library), "--at", today)["meta"]["version"] == "1.0"
    future = (later.date() + dt.timedelta(days=1)).isoformat()
    assert invoke_json("show", "alpha", "--library", str(library), "--at", future)["meta"]["version"] == "2.0"

    plain = invoke("show", "alpha", "--library", str(library), "--at", first)
    assert plain.exit_code == 0, plain.output
    assert f"As of commit {first}" in plain.stdout
    assert f"alpha@1.0  Demo protocol alpha" in plain.stdout
    assert f"commit {first}" in plain.stdout


def test_protocol_at_errors(library):
    with pytest.raises(RepositoryError, match="no commit on or before 1999-01-01"):
        protocol_at(library, "alpha", "1999-01-01")
    with pytest.raises(RepositoryError, match="neither a date"):
        protocol_at(library, "alpha", "not-a-ref")
    with pytest.raises(ProtocolNotFound, match="did not exist at commit"):
        protocol_at(library, "omega", "HEAD")


def test_audit_reads_cited_blob_after_the_file_changed(library):
    record, feedback_id, proposal, approval = approved_library(library)
    data = invoke_json("audit", record.id)

    assert data["query"] == MISROUTED_QUERY
    assert data["chosen"] == ["alpha"]
    assert data["candidates"][0]["id"] == "alpha"
    cited = data["cited"][0]
    assert cited["id"] == "alpha"
    assert cited["blob_found"] is True
    assert cited["in_commit"] is True
    assert cited["current_file_matches"] is False  # the approval changed alpha.md since
    assert 'version: "1.0"' in cited["text"]
    assert cited["key_actions"].startswith("1. Do the first thing.")
    assert [item["feedback_id"] for item in data["feedback"]] == [feedback_id]
    assert data["proposals"][0]["merge_commit"] == approval["merge_commit"]
    assert data["model"] == {"path": None, "sha256": None}

    plain = invoke("audit", record.id)
    assert plain.exit_code == 0, plain.output
    assert f"Protocol alpha@1.0 blob {cited['blob_sha']} (read from git)" in plain.stdout


def test_audit_uncommitted_citation_is_noted(library):
    (library / "alpha.md").write_text(protocol_text("alpha", keywords="\n  - any: [fever, pyrexia]"))
    record = answer(library, "pyrexia today")
    data = invoke_json("audit", record.id)
    assert data["cited"][0]["blob_found"] is False
    assert data["notes"] == [f"alpha: blob {data['cited'][0]['blob_sha']} not found (the answer cited an uncommitted file)"]


def test_audit_unknown_answer(library):
    result = invoke("audit", "abcdef012345")
    assert result.exit_code == 1
    assert "no answer with id 'abcdef012345'" in result.stderr
