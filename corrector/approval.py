"""Approve or reject a proposal: merge it into the library branch as a reviewed commit, or keep it as rejected."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.audit import AnswerRecord, get_record
from router.choice import ChatModel

from corrector.errors import DirtyFiles, MergeConflict, ProposalError, ReplayBroken, RepositoryError, ReviewerUnknown
from corrector.flags import Flag, diff_flags, instruction_flags
from corrector.frontmatter import edit_front_matter, review_edit
from corrector.gitrepo import Identity, LibraryRepo
from corrector.proposals import MAX_SUBJECT, load_chat_model, replay_trees
from corrector.replay import ReplayCases, ReplayResult
from corrector.review import branch_ref, conflict_error, front_value, is_protocol_path, proposal_tip, replay_cases_for, repository_for
from corrector.store import Feedback, Proposal, get_feedback, get_proposal, now_utc, record_decision
from corrector.workspace import materialised, require_valid

def resolve_reviewer(repo: LibraryRepo, option: str | None) -> Identity:
    """Return the reviewer: --reviewer 'Name <email>', else user.name and user.email from git config."""
    if option:
        return Identity.parse(option)
    identity = repo.identity_from_config()
    if identity is None:
        raise ReviewerUnknown(
            "no reviewer: pass --reviewer \"Name <email>\" or set git config user.name and user.email"
        )
    return identity


@dataclass
class ApprovalPlan:
    """The effects of an approval, computed without writing anything but git objects."""

    proposal: Proposal
    branch: str
    current: str
    tip: str
    tree: str
    paths: list[str]  # files that differ between the library branch and the approved tree
    versions: dict[str, dict[str, str | None]]
    replay: ReplayResult
    flags: list[Flag]
    reviewer: Identity

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal.id,
            "library_branch": self.branch,
            "library_commit": self.current,
            "branch_tip": self.tip,
            "paths": self.paths,
            "versions": self.versions,
            "reviewer": str(self.reviewer),
            "flags": [flag.to_json() for flag in self.flags],
            "replay": self.replay.to_json(),
        }


def review_changes(
    repo: LibraryRepo, base: str, tip: str, merged: str, today: dt.date, reviewer: Identity
) -> tuple[dict[str, bytes], dict[str, dict[str, str | None]]]:
    """Bump the version and review dates of each protocol file that the proposal changes.

    A file that is new, or whose version the branch already changed by hand, keeps its version.
    approved_by is set to the reviewer except in drafts. Returns the new file contents and, per protocol id, the version before and after.
    """
    changes: dict[str, bytes] = {}
    versions: dict[str, dict[str, str | None]] = {}
    for path in repo.changed_paths(base, tip):
        content = repo.read_blob(merged, path)
        if content is None or not is_protocol_path(repo, path):
            continue
        old = repo.read_blob(base, path)
        bump = old is not None and front_value(old, "version") == front_value(repo.read_blob(tip, path), "version")
        approver = None if front_value(content, "status") == "draft" else reviewer.name  # a draft is not clinically approved
        text = edit_front_matter(content.decode("utf-8"), review_edit(today, approver, bump))
        changes[path] = text.encode("utf-8")
        protocol_id = front_value(content, "id") or path
        versions[protocol_id] = {"before": front_value(old, "version"), "after": front_value(changes[path], "version")}
    return changes, versions


def check_clean(repo: LibraryRepo, current: str, paths: list[str]) -> None:
    """Raise DirtyFiles when any path has staged or unstaged changes, or is an untracked file in the way."""
    dirty = []
    for path in paths:
        committed = repo.blob_sha(current, path)
        if repo.index_entry(path) != committed or repo.worktree_blob(path) != committed:
            dirty.append(path)
    if dirty:
        raise DirtyFiles(
            f"uncommitted changes in {', '.join(dirty)} would be overwritten by the approval, so nothing was changed: "
            "commit or stash them ('git stash'), approve again, then 'git stash pop'"
        )


def plan_approval(
    repo: LibraryRepo, proposal: Proposal, reviewer: Identity, today: dt.date, cases: ReplayCases,
    model: ChatModel | None, comment: str,
) -> ApprovalPlan:
    """Merge, bump, check, validate and replay an approval; only git objects are written."""
    branch = repo.require_branch()
    current = repo.branch_tip(branch)
    tip = proposal_tip(repo, proposal)
    try:
        merged = repo.merge_trees(current, tip)
    except MergeConflict as error:
        raise conflict_error(proposal, branch, error) from None

    base = repo.merge_base(current, tip) or proposal.base_commit
    label = f"proposal {proposal.id} merged into {branch}"
    with materialised(repo, current) as before:
        with materialised(repo, merged) as after:
            require_valid(before, after, repo.folder, label)
        changes, versions = review_changes(repo, base, tip, merged, today, reviewer)
        tree = repo.build_tree(merged, changes) if changes else merged
        with materialised(repo, tree) as after:
            require_valid(before, after, repo.folder, label + " with its review dates")
    paths = repo.changed_paths(current, tree)
    if not paths:
        raise ProposalError(f"proposal {proposal.id} changes nothing on {branch} any more: reject it")
    check_clean(repo, current, paths)

    result = replay_trees(repo, current, tree, cases, model)
    diff = repo.diff(base, tip)
    flags = instruction_flags(comment, "feedback comment") + diff_flags(diff, comment)
    return ApprovalPlan(proposal, branch, current, tip, tree, paths, versions, result, flags, reviewer)


def approval_message(plan: ApprovalPlan, feedback: Feedback) -> str:
    proposal = plan.proposal
    subject = f"Approve proposal {proposal.id}: {proposal.summary}"
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 3] + "..."
    versions = "; ".join(f"{pid} {item['before'] or 'new'} -> {item['after']}" for pid, item in plan.versions.items())
    counts = ", ".join(f"{len(plan.replay.with_change(change))} {change}" for change in ("fixed", "broken", "unchanged"))
    mode = "with the model" if plan.replay.with_model else "rules only"
    return (
        f"{subject}\n\n"
        f"Merges {proposal.branch}, drafted from {feedback.kind} feedback {feedback.id} on answer {feedback.answer_id}.\n"
        f"Versions: {versions or 'unchanged'}.\n"
        f"Replay ({mode}): {counts}.\n\n"
        f"Proposal: {proposal.id}\nFeedback: {feedback.id}\nReviewed-by: {plan.reviewer}\n"
    )


def prepare_approval(
    proposal_id: str, library_option: Path | str | None = None, *, reviewer: str | None = None,
    today: dt.date | None = None, cases_file: Path | None = None, with_model: bool = False,
    model: ChatModel | None = None, model_option: Path | None = None,
) -> ApprovalPlan:
    """Return what approving would do, for the confirmation prompt; writes only git objects."""
    proposal, feedback, record, repo = pending(proposal_id, library_option)
    identity = resolve_reviewer(repo, reviewer)
    if with_model and model is None:
        model = load_chat_model(model_option)
    cases = replay_cases_for(repo, feedback, record, cases_file)
    return plan_approval(repo, proposal, identity, today or dt.date.today(), cases, model if with_model else None, feedback.comment)


def pending(proposal_id: str, library_option: Path | str | None) -> tuple[Proposal, Feedback, AnswerRecord, LibraryRepo]:
    """Load a proposal that is still pending, with its feedback, answer and repository."""
    proposal = get_proposal(proposal_id)
    if proposal.status != "pending":
        raise ProposalError(f"proposal {proposal.id} was already {proposal.status} on {proposal.decided_at}")
    feedback = get_feedback(proposal.feedback_id)
    return proposal, feedback, get_record(feedback.answer_id), repository_for(proposal, library_option)


@dataclass
class Approval:
    """A landed approval: the merge commit on the library branch and what it changed."""

    proposal: Proposal
    merge_commit: str
    plan: ApprovalPlan

    def to_json(self) -> dict[str, Any]:
        data = self.plan.to_json()
        data.update({"merge_commit": self.merge_commit, "branch": self.proposal.branch, "status": self.proposal.status})
        return data


def approve_proposal(
    proposal_id: str, library_option: Path | str | None = None, *, reviewer: str | None = None,
    today: dt.date | None = None, cases_file: Path | None = None, with_model: bool = False,
    model: ChatModel | None = None, model_option: Path | None = None, allow_broken: bool = False,
) -> Approval:
    """Merge a proposal into the library branch as a reviewed commit, with versions bumped.

    Runs under the library's lock file, at the branch tips as they are once the lock is held.
    Only the merged files are written in the working tree and index, and only when they have no
    uncommitted changes. Every other file, staged or not, is left as it is. Side effects: a merge
    commit on the library branch, the proposal branch renamed to approved/..., the decision stored.
    """
    proposal, feedback, record, repo = pending(proposal_id, library_option)
    identity = resolve_reviewer(repo, reviewer)
    repo.require_branch()
    if with_model and model is None:
        model = load_chat_model(model_option)
    cases = replay_cases_for(repo, feedback, record, cases_file)

    with repo.lock():
        proposal = get_proposal(proposal.id)  # another process may have decided it while this one waited
        if proposal.status != "pending":
            raise ProposalError(f"proposal {proposal.id} was {proposal.status} by another process while this one waited")
        repo.check_index_lock()
        plan = plan_approval(repo, proposal, identity, today or dt.date.today(), cases, model if with_model else None, feedback.comment)
        if plan.replay.broken and not allow_broken:
            names = ", ".join(case.id for case in plan.replay.broken)
            raise ReplayBroken(
                f"approving proposal {proposal.id} would break {len(plan.replay.broken)} cases that pass now ({names}); "
                "nothing was changed: fix the proposal branch, or pass --allow-broken to approve anyway"
            )
        commit = repo.commit_tree(plan.tree, [plan.current, plan.tip], approval_message(plan, feedback), identity, identity)
        repo.move_ref(f"refs/heads/{plan.branch}", commit, plan.current, f"protocol approve {proposal.id}")
        update_worktree(repo, plan, commit)
        finish(repo, proposal, "approved", identity, commit, None, plan.replay)
    return Approval(proposal, commit, plan)


def update_worktree(repo: LibraryRepo, plan: ApprovalPlan, commit: str) -> None:
    """Write the merged files into the working tree and index; they were checked clean under the lock."""
    try:
        for path in plan.paths:
            content = repo.read_blob(commit, path)
            if content is None:
                (repo.root / path).unlink(missing_ok=True)
                repo.run("update-index", "--remove", "--", path)
            else:
                repo.write_worktree_file(path, content)
    except (OSError, RepositoryError) as error:
        raise RepositoryError(
            f"the approval was committed as {commit[:12]} on {plan.branch}, but updating the working tree failed ({error}): "
            f"run 'git checkout HEAD -- {' '.join(plan.paths)}' to bring those files up to date"
        ) from None


def finish(
    repo: LibraryRepo, proposal: Proposal, status: str, reviewer: Identity, merge_commit: str | None,
    reason: str | None, replay: ReplayResult | None,
) -> None:
    """Rename the proposal branch to approved/... or rejected/... and store the decision."""
    old_ref = branch_ref(proposal)
    new_branch = f"{status}/{proposal.branch.removeprefix('proposal/')}"
    if repo.ref_exists(old_ref):
        verb = "approve" if status == "approved" else "reject"
        repo.rename_ref(old_ref, f"refs/heads/{new_branch}", f"protocol {verb} {proposal.id}: {reason or merge_commit}")
        proposal.branch = new_branch
    proposal.status = status  # type: ignore[assignment]
    proposal.decided_at = now_utc()
    proposal.reviewer = str(reviewer)
    proposal.reason = reason
    proposal.merge_commit = merge_commit
    if replay is not None:
        proposal.replay = replay.to_json()
    record_decision(proposal)


def reject_proposal(
    proposal_id: str, library_option: Path | str | None = None, *, reason: str, reviewer: str | None = None
) -> Proposal:
    """Reject a proposal: its branch is kept as rejected/..., the reason and reviewer are stored.

    Side effects: the branch rename (with the reason in its reflog) and the decision in the database.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ProposalError("a rejection needs a reason: pass --reason \"...\"")
    proposal, _, _, repo = pending(proposal_id, library_option)
    identity = resolve_reviewer(repo, reviewer)
    repo.require_branch()
    with repo.lock():
        proposal = get_proposal(proposal.id)
        if proposal.status != "pending":
            raise ProposalError(f"proposal {proposal.id} was {proposal.status} by another process while this one waited")
        finish(repo, proposal, "rejected", identity, None, reason, None)
    return proposal
