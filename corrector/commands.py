"""The error-loop commands: feedback, propose, review, approve, reject, history and audit.

Each command parses its options, calls the corrector functions, prints through router.console
and maps every RouterError to 'Error: ...' with exit code 1. register(app) adds them to cli.py.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from router import views as router_views
from router.audit import get_record
from router.console import consoles, fail, print_json
from router.errors import RouterError

from corrector import views
from corrector.auditview import audit_answer
from corrector.feedback import record_feedback
from corrector.history import protocol_at, protocol_history
from corrector.proposals import propose_change
from corrector.approval import approve_proposal, prepare_approval, reject_proposal
from corrector.review import review_proposal
from corrector.store import FEEDBACK_KINDS, list_proposals

LibraryOption = Annotated[
    Path | None,
    typer.Option("--library", "-l", help="Protocol library folder (default: PROTOCOL_LIBRARY, then the starter library)."),
]
AnswerLibraryOption = Annotated[
    Path | None,
    typer.Option(
        "--library", "-l",
        help="Protocol library folder (default: PROTOCOL_LIBRARY, then the library that gave the answer, then the starter library).",
    ),
]
ProposalLibraryOption = Annotated[
    Path | None,
    typer.Option("--library", "-l", help="Protocol library folder (default: the library the proposal was made for)."),
]
CasesOption = Annotated[
    Path | None,
    typer.Option("--cases", help="Case file (JSONL or YAML) to replay (default: tests/cases/router-dev.jsonl in the library's repository, if present)."),
]
WithModelOption = Annotated[bool, typer.Option("--with-model", help="Replay with the model choosing, not rules only (slower).")]
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="GGUF model file (default: PROTOCOL_MODEL, then the installed default model)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ReviewerOption = Annotated[
    str | None,
    typer.Option("--reviewer", help="Reviewer as \"Name <email>\" (default: git config user.name and user.email)."),
]


class Kind(str, Enum):
    """What was wrong with an answer."""

    wrong_protocol = "wrong-protocol"
    wrong_content = "wrong-content"
    missing_protocol = "missing-protocol"


def prompt_feedback(answer_id: str, kind: Kind | None, expected: list[str] | None, comment: str | None) -> tuple[str, list[str], str]:
    """Ask for every field that was not given as an option; prompts go to stderr so --json stays clean."""
    record = get_record(answer_id)
    _, err = consoles()
    err.print(f"Answer {record.id}: {escape(' '.join(record.query.split())[:200])}")
    err.print(f"It used: {escape(', '.join(record.chosen) or 'no protocol')}")
    chosen_kind = kind.value if kind else ""
    while chosen_kind not in FEEDBACK_KINDS:
        chosen_kind = typer.prompt(f"What was wrong ({', '.join(FEEDBACK_KINDS)})", err=True).strip()
    if not expected:
        hints = {
            "wrong-protocol": "Protocol ids it should have used (comma-separated)",
            "wrong-content": "Protocol whose text was wrong",
            "missing-protocol": "Id for the new protocol (lower-case, hyphens)",
        }
        default = ", ".join(record.chosen) if chosen_kind == "wrong-content" and record.chosen else None
        expected = [typer.prompt(hints[chosen_kind], default=default, err=True)]
    if comment is None:
        comment = typer.prompt("Comment: what was wrong and what is right", default="", show_default=False, err=True)
    return chosen_kind, expected, comment


def feedback(
    answer_id: Annotated[str, typer.Argument(help="Answer id from 'protocol ask' or 'protocol log' (a unique prefix is enough).")],
    kind: Annotated[Kind | None, typer.Option("--kind", help="What was wrong; asked for when left out.")] = None,
    expected: Annotated[
        list[str] | None,
        typer.Option("--expected", help="Protocol id(s) the answer should have used, or the id for a missing protocol; repeat or separate with commas."),
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="What was wrong and what is right.")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Who gives the feedback.")] = None,
    propose: Annotated[bool, typer.Option("--propose", help="Draft a proposal from the feedback right away.")] = False,
    library: AnswerLibraryOption = None,
    cases: CasesOption = None,
    with_model: WithModelOption = False,
    model: ModelOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record what was wrong with an answer: the wrong protocol, wrong content, or a missing protocol."""
    out, err = consoles()
    try:
        if kind is None or not expected or comment is None:
            kind_value, expected, comment = prompt_feedback(answer_id, kind, expected, comment)
        else:
            kind_value = kind.value
        recorded = record_feedback(answer_id, kind_value, expected, comment, author, library)
        created = propose_change(recorded.id, library, cases_file=cases, with_model=with_model, model_option=model) if propose else None
    except RouterError as error:
        fail(error, err)

    if json_output:
        data = recorded.to_json()
        data["proposal"] = created[0].to_json() if created else None
        print_json(out, data)
        return
    views.print_feedback(recorded, out)
    if created:
        views.print_proposal_created(*created, out)


def propose(
    feedback_id: Annotated[str, typer.Argument(help="Feedback id from 'protocol feedback'.")],
    library: AnswerLibraryOption = None,
    cases: CasesOption = None,
    with_model: WithModelOption = False,
    model: ModelOption = None,
    json_output: JsonOption = False,
) -> None:
    """Analyse the feedback and commit a proposed protocol change on its own branch, without touching the working tree."""
    out, err = consoles()
    try:
        proposal, result = propose_change(feedback_id, library, cases_file=cases, with_model=with_model, model_option=model)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, proposal.to_json())
    else:
        views.print_proposal_created(proposal, result, out)


def review(
    proposal_id: Annotated[str | None, typer.Argument(help="Proposal to show; without it, list the pending proposals.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List approved and rejected proposals too.")] = False,
    library: ProposalLibraryOption = None,
    cases: CasesOption = None,
    with_model: WithModelOption = False,
    model: ModelOption = None,
    json_output: JsonOption = False,
) -> None:
    """List pending proposals, or show one: its diff, feedback, analysis, flags and replay results."""
    out, err = consoles()
    try:
        if proposal_id is None:
            proposals = list_proposals(None if show_all else "pending")
        else:
            view = review_proposal(proposal_id, library, cases_file=cases, with_model=with_model, model_option=model)
    except RouterError as error:
        fail(error, err)

    if proposal_id is None:
        if json_output:
            print_json(out, [proposal.to_json() for proposal in proposals])
        else:
            views.print_proposal_list(proposals, out)
    elif json_output:
        print_json(out, view.to_json())
    else:
        views.print_review(view, out, err)


def approve(
    proposal_id: Annotated[str, typer.Argument(help="Proposal to approve.")],
    reviewer: ReviewerOption = None,
    yes: YesOption = False,
    allow_broken: Annotated[bool, typer.Option("--allow-broken", help="Approve even if the replay shows cases that the change breaks.")] = False,
    library: ProposalLibraryOption = None,
    cases: CasesOption = None,
    with_model: WithModelOption = False,
    model: ModelOption = None,
    json_output: JsonOption = False,
) -> None:
    """Merge a proposal into the library's branch with a Reviewed-by trailer and the version bumped."""
    out, err = consoles()
    today = dt.date.today()
    try:
        if not yes:
            plan = prepare_approval(proposal_id, library, reviewer=reviewer, today=today, cases_file=cases, with_model=with_model, model_option=model)
            views.print_approval_plan(plan, err)
            typer.confirm("Approve and merge?", abort=True, err=True)
        approval = approve_proposal(
            proposal_id, library, reviewer=reviewer, today=today, cases_file=cases, with_model=with_model,
            model_option=model, allow_broken=allow_broken,
        )
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, approval.to_json())
    else:
        views.print_approval(approval, out)


def reject(
    proposal_id: Annotated[str, typer.Argument(help="Proposal to reject.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why the proposal is rejected; stored with the decision (asked for when left out).")] = None,
    reviewer: ReviewerOption = None,
    yes: YesOption = False,
    library: ProposalLibraryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a proposal; its branch is kept as rejected/... and the reason is recorded."""
    out, err = consoles()
    if reason is None:
        reason = typer.prompt("Reason for rejecting", err=True)
    if not yes:
        typer.confirm(f"Reject proposal {proposal_id}?", abort=True, err=True)
    try:
        proposal = reject_proposal(proposal_id, library, reason=reason, reviewer=reviewer)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, proposal.to_json())
    else:
        views.print_rejection(proposal, out)


def history(
    protocol_id: Annotated[str, typer.Argument(help="Protocol id.")],
    library: LibraryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a protocol's versions: dates, authors, reviewers and linked feedback, from git."""
    out, err = consoles()
    try:
        result = protocol_history(library, protocol_id)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, result.to_json())
    else:
        views.print_history(result, out)


def audit(
    answer_id: Annotated[str, typer.Argument(help="Answer id from 'protocol ask' or 'protocol log'.")],
    library: AnswerLibraryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a past answer: query, candidates, the protocol texts used at their exact blob SHAs, model hash and answer."""
    out, err = consoles()
    try:
        result = audit_answer(answer_id, library)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, result.to_json())
    else:
        views.print_audit(result, out)


def show_at(protocol_id: str, library: Path | None, at: str, json_output: bool) -> None:
    """Print a protocol as it was at a date or commit; the body of 'protocol show ID --at ...'."""
    out, err = consoles()
    try:
        version = protocol_at(library, protocol_id, at)
    except RouterError as error:
        fail(error, err)

    if json_output:
        data = router_views.protocol_detail(version.protocol, version.as_library(version.root))
        data.update({"at": at, "commit": version.commit, "date": version.date, "path": version.path})
        print_json(out, data)
    else:
        views.print_version(version, out)


def register(app: typer.Typer) -> None:
    """Add the error-loop commands to the `protocol` app."""
    for name, function in (
        ("feedback", feedback), ("propose", propose), ("review", review), ("approve", approve),
        ("reject", reject), ("history", history), ("audit", audit),
    ):
        app.command(name)(function)
