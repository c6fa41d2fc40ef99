"""Terminal output of the error-loop commands; every dynamic text is escaped, never read as rich markup."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from router.views import printable
from router import views as router_views
from router.audit import AnswerRecord

from corrector.auditview import AnswerAudit
from corrector.history import ProtocolHistory, ProtocolVersion
from corrector.replay import ReplayCase, ReplayResult
from corrector.approval import Approval, ApprovalPlan
from corrector.review import ReviewView
from corrector.store import Feedback, Proposal

QUERY_CHARS = 70


def short(text: str, limit: int = QUERY_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def outcome(chosen: list[str], ambiguous: bool) -> str:
    return "ambiguous" if ambiguous else ", ".join(chosen) or "no match"


def print_feedback(feedback: Feedback, out: Console) -> None:
    expected = ", ".join(feedback.expected) or "none"
    out.print(f"Feedback {feedback.id} recorded on answer {feedback.answer_id}: {feedback.kind}, expected {escape(expected)}.")
    out.print(f"Next: protocol propose {feedback.id}")


def print_replay_case(case: ReplayCase, out: Console) -> None:
    expected = "ambiguous" if case.ambiguous_expected else ", ".join(case.expected) or "no match"
    out.print(
        f"  {case.change.upper():9} {escape(case.id)}  before: {escape(outcome(case.before, case.before_ambiguous))}"
        f"  after: {escape(outcome(case.after, case.after_ambiguous))}  expected: {escape(expected)}"
        f"  ({case.origin}: {escape(printable(short(case.query)))})"
    )


def print_replay(result: ReplayResult | None, out: Console) -> None:
    if result is None:
        out.print("Replay: none stored.")
        return
    mode = "with the model" if result.with_model else "rules only"
    source = f"cases from {escape(result.cases_file)} and example_queries" if result.cases_file else "example_queries only (no case file)"
    out.print(f"Replay ({mode}; {source}); current {result.current[:12]}, proposed {result.proposed[:12]}:")
    for case in [*result.fixed, *result.broken]:
        print_replay_case(case, out)
    counts = ", ".join(f"{len(result.with_change(change))} {change}" for change in ("fixed", "broken", "unchanged"))
    out.print(f"  {counts}")
    before, after = result.totals_before, result.totals_after
    out.print(f"  passed before {before['passed']}/{before['cases']}, after {after['passed']}/{after['cases']}")


def print_proposal_created(proposal: Proposal, result: ReplayResult, out: Console) -> None:
    out.print(f"Proposal {proposal.id} committed on branch {escape(proposal.branch)} ({proposal.proposed_commit[:12]}).")
    out.print(f"Changes {escape(', '.join(proposal.paths))}: {escape(proposal.summary)}")
    print_analysis(proposal.analysis, out)
    print_replay(result, out)
    out.print(f"Next: protocol review {proposal.id}")


def print_analysis(analysis: str, out: Console) -> None:
    out.print("Analysis:")
    for line in analysis.splitlines():
        out.print(f"  - {escape(line)}")


def print_proposal_list(proposals: list[Proposal], out: Console) -> None:
    if not proposals:
        out.print("No proposals to review.")
        return
    for proposal in proposals:
        counts = ""
        if proposal.replay:
            result = ReplayResult.from_json(proposal.replay)
            counts = f"  fixed {len(result.fixed)}, broken {len(result.broken)}"
        out.print(
            f"{proposal.id}  {proposal.status}  {proposal.created_at}  {proposal.kind}  "
            f"{escape(', '.join(proposal.protocol_ids))}  {escape(proposal.branch)}{counts}"
        )


def print_diff(diff: str, out: Console) -> None:
    """Print a diff highlighted on a terminal, or exactly as git wrote it when piped."""
    if not diff:
        out.print("(no changes)")
        return
    if out.is_terminal:
        out.print(Syntax(diff, "diff", theme="ansi_dark", background_color="default", word_wrap=False))
    else:
        out.out(diff.rstrip("\n"), highlight=False)


def print_flags(flags: list, out: Console) -> None:  # type: ignore[type-arg]
    for flag in flags:
        out.print(f"FLAG: {escape(flag.where)}: {escape(flag.reason)}: {escape(repr(flag.text))}")


def print_review(view: ReviewView, out: Console, err: Console) -> None:
    proposal = view.proposal
    feedback = view.feedback
    out.print(f"Proposal {proposal.id} ({proposal.status}), branch {escape(proposal.branch)}, created {proposal.created_at}")
    out.print(f"Feedback {feedback.id} ({feedback.kind}) by {escape(feedback.author or '(author not given)')} on answer {feedback.answer_id}")
    out.print(f"  query: {escape(short(view.query, 200))}")
    out.print(f"  answer used: {escape(', '.join(view.answer_chosen) or 'no protocol')}; expected: {escape(', '.join(feedback.expected))}")
    if feedback.comment:
        out.print(f"  comment: {escape(feedback.comment)}")
    print_analysis(proposal.analysis, out)
    print_flags(view.flags, out)
    for notice in view.notices:
        err.print(f"Warning: {escape(notice)}")
    if proposal.status != "pending":
        out.print(f"Decided {proposal.decided_at} by {escape(proposal.reviewer or 'unknown')}: {proposal.status}"
                  + (f", reason: {escape(proposal.reason)}" if proposal.reason else "")
                  + (f", merge commit {proposal.merge_commit}" if proposal.merge_commit else ""))
    print_replay(view.replay, out)
    out.print("Diff:")
    print_diff(view.diff, out)


def print_approval_plan(plan: ApprovalPlan, out: Console) -> None:
    """Print what an approval will do, before the confirmation prompt."""
    out.print(f"Approving proposal {plan.proposal.id} merges {escape(plan.proposal.branch)} into {escape(plan.branch)} as {escape(str(plan.reviewer))}.")
    out.print(f"Files: {escape(', '.join(plan.paths))}")
    for protocol_id, versions in plan.versions.items():
        out.print(f"  {escape(protocol_id)}: version {versions['before'] or 'new'} -> {versions['after']}")
    print_flags(plan.flags, out)
    print_replay(plan.replay, out)


def print_approval(approval: Approval, out: Console) -> None:
    out.print(f"Approved proposal {approval.proposal.id}: merge commit {approval.merge_commit} on {escape(approval.plan.branch)}.")
    for protocol_id, versions in approval.plan.versions.items():
        out.print(f"  {escape(protocol_id)}: version {versions['before'] or 'new'} -> {versions['after']}")
    out.print(f"The proposal branch is kept as {escape(approval.proposal.branch)}.")


def print_rejection(proposal: Proposal, out: Console) -> None:
    out.print(f"Rejected proposal {proposal.id} by {escape(proposal.reviewer or 'unknown')}: {escape(proposal.reason or '')}")
    out.print(f"The branch is kept as {escape(proposal.branch)}.")


def print_history(history: ProtocolHistory, out: Console) -> None:
    out.print(f"History of {history.protocol_id} ({escape(history.path)}) on {escape(history.branch or 'detached HEAD')}:")
    if not history.entries:
        out.print("  no commits")
    for entry in history.entries:
        out.print(f"{entry.commit[:12]}  {entry.date}  version {escape(entry.version or '?')}  {entry.change}  {escape(entry.subject)}")
        out.print(f"    author {escape(entry.author)}" + (f", proposed by {escape(entry.proposed_by)}" if entry.proposed_by else ""))
        for reviewer in entry.reviewed_by:
            out.print(f"    reviewed by {escape(reviewer)}")
        for feedback_id in entry.feedback_ids:
            found = next((item for item in entry.feedback if item.id == feedback_id), None)
            detail = f": {found.kind} on answer {found.answer_id}, {escape(short(found.comment or 'no comment'))}" if found else " (not in this audit database)"
            out.print(f"    feedback {escape(feedback_id)}{detail}")


def print_version(version: ProtocolVersion, out: Console) -> None:
    out.print(f"As of commit {version.commit} ({version.date}), file {escape(version.path)}:")
    router_views.print_protocol(version.protocol, version.as_library(version.root), out)


def print_audit(audit: AnswerAudit, out: Console) -> None:
    record: AnswerRecord = audit.record
    out.print(f"Answer {record.id} at {record.created_at}")
    out.print(f"Query: {escape(printable(record.query))}")
    out.print(f"Library: {escape(record.library_path)}, commit {record.library_commit or 'none'}")
    out.print("Candidates:")
    for candidate in record.candidates:
        out.print(f"  {candidate.get('score', 0):5}  {escape(str(candidate.get('id')))}  {escape('; '.join(candidate.get('reasons', [])))}")
    out.print(f"Chosen ({record.choice_source}): {escape(', '.join(record.chosen) or 'no protocol')}")
    out.print(f"Model: {escape(record.model_path or 'none')}, SHA-256 {record.model_sha256 or 'none'}")
    for item in audit.cited:
        citation = item.citation
        state = "read from git" if item.found else "NOT FOUND in the repository"
        out.print(f"\nProtocol {escape(str(citation.get('id')))}@{escape(str(citation.get('version')))} blob {citation.get('blob_sha')} ({state})")
        out.print(f"  commit {citation.get('commit') or 'uncommitted'}, in that commit: {item.in_commit}; file on disk today is the same: {item.current_matches}")
        if item.key_actions:
            out.print("  Key actions as used:")
            out.print(escape(item.key_actions))
    out.print("\nAnswer:")
    out.print(escape(record.answer or "(no answer text)"))
    for warning in record.warnings:
        out.print(f"Warning recorded: {escape(warning)}")
    for feedback in audit.feedback:
        out.print(f"Feedback {feedback.id}: {feedback.kind}, expected {escape(', '.join(feedback.expected))}, {escape(short(feedback.comment or 'no comment'))}")
    for proposal in audit.proposals:
        out.print(f"Proposal {proposal.id}: {proposal.status}, branch {escape(proposal.branch)}" + (f", merge commit {proposal.merge_commit}" if proposal.merge_commit else ""))
    for note in audit.notes:
        out.print(f"Note: {escape(note)}")
