"""Proposal creation details: invalid drafts are not written, replay with a model, diff rendering."""

from __future__ import annotations

import io
import json
from typing import Any

import git
from rich.console import Console

from corrector.proposals import propose_change
from corrector.store import list_proposals
from corrector.views import print_diff
from tests.corrector.conftest import MISROUTED_QUERY, answer, invoke, record_feedback, repo_state
from tests.fakes import FakeChatModel


def test_invalid_draft_is_not_written(library, monkeypatch):
    # Replacing the dose line leaves a key action with a drug but no dose, which 'protocol check' rejects.
    reply = json.dumps({"section": "Key actions", "old_line": "- dose: 1 mg/kg", "new_line": "give it slowly"})
    monkeypatch.setattr("corrector.proposals.load_chat_model", lambda option: FakeChatModel((reply, "stop")))
    record = answer(library, "high fever on a hot day")
    feedback_id = record_feedback(record.id, "alpha", kind="wrong-content", comment="give it slowly")
    before = repo_state(library)

    result = invoke("propose", feedback_id, "--library", str(library))

    assert result.exit_code == 1, result.output
    assert "the drafted change fails 'protocol check' with 1 new errors, so nothing was written" in result.stderr
    assert f"{library / 'alpha.md'}:" in result.stderr
    assert "key action with a drug lacks dose" in result.stderr
    assert repo_state(library) == before
    assert list_proposals(None) == []


class ChoosingModel:
    """A chat model that always chooses the first candidate it is offered, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        self.calls += 1
        first = kwargs["response_format"]["schema"]["properties"]["protocols"]["items"]["enum"][0]
        return {"choices": [{"message": {"content": json.dumps({"protocols": [first]})}, "finish_reason": "stop"}]}


def test_replay_with_model_uses_the_model(library):
    record = answer(library, MISROUTED_QUERY)
    feedback_id = record_feedback(record.id, "beta")
    model = ChoosingModel()
    proposal, result = propose_change(feedback_id, library, with_model=True, model=model)
    assert result.with_model is True
    assert proposal.replay is not None and proposal.replay["with_model"] is True
    assert model.calls == 2 * len(result.cases)
    assert [case.change for case in result.cases if case.origin == "feedback"] == ["fixed"]


def test_propose_for_unknown_feedback(library):
    result = invoke("propose", "abcdef012345", "--library", str(library))
    assert result.exit_code == 1
    assert "no feedback with id 'abcdef012345'" in result.stderr


def test_propose_outside_git_is_clear(tmp_path, library):
    from tests.conftest import protocol_text, write_library

    plain = write_library(tmp_path / "plain", {"alpha.md": protocol_text("alpha", keywords="\n  - any: [fever]")})
    record = answer(plain, "fever today")
    feedback_id = record_feedback(record.id, "alpha", kind="wrong-content", comment="x")
    result = invoke("propose", feedback_id, "--library", str(plain))
    assert result.exit_code == 1
    assert "is not in a git repository: run 'git init' there" in result.stderr


def test_proposal_commit_author_and_trailers(library):
    record = answer(library, MISROUTED_QUERY)
    proposal, _ = propose_change(record_feedback(record.id, "beta"), library)
    commit = git.Repo(library).commit(proposal.branch)
    assert str(commit.author) == "protocol-router"
    assert commit.message.endswith(f"Proposal: {proposal.id}\nFeedback: {proposal.feedback_id}\nAnswer: {record.id}\n")


def test_diff_highlighted_or_verbatim():
    diff = "--- a/x.md\n+++ b/x.md\n@@ -1 +1 @@\n-old [bold]\n+new [red]\n"
    piped = io.StringIO()
    print_diff(diff, Console(file=piped, force_terminal=False, width=4096))
    assert piped.getvalue() == diff
    terminal = io.StringIO()
    print_diff(diff, Console(file=terminal, force_terminal=True, color_system="standard", width=120))
    assert "\x1b[" in terminal.getvalue()
    assert "+new [red]" in terminal.getvalue().replace("\x1b[0m", "")
