"""Show proposals for review: the diff against the library branch, the feedback, flags and the replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.audit import AnswerRecord, get_record
from router.choice import ChatModel
from router.library import NOT_PROTOCOLS, resolve_library_path

from corrector.errors import MergeConflict, ProposalError, RepositoryError
from corrector.flags import Flag, diff_flags, instruction_flags
from corrector.frontmatter import load_front, split_text
from corrector.gitrepo import LibraryRepo
from corrector.proposals import feedback_case, load_chat_model, open_repository, replay_trees
from corrector.replay import ReplayCases, ReplayResult, find_cases
from corrector.store import Feedback, Proposal, get_feedback, get_proposal, save_replay

def repository_for(proposal: Proposal, library_option: Path | str | None) -> LibraryRepo:
    """Open the proposal's library repository; --library must name the same repository."""
    folder = resolve_library_path(library_option) if library_option else Path(proposal.library_path)
    repo = open_repository(folder)
    if repo.root != Path(proposal.repo_root).resolve():
        raise ProposalError(
            f"proposal {proposal.id} belongs to the library in {proposal.library_path}, not {folder}: "
            f"pass --library {proposal.library_path} or leave --library out"
        )
    return repo


def branch_ref(proposal: Proposal) -> str:
    return f"refs/heads/{proposal.branch}"


def proposal_tip(repo: LibraryRepo, proposal: Proposal) -> str:
    """Return the commit at the tip of the proposal's branch, where any edits made with git land."""
    tip = repo.resolve_commit(branch_ref(proposal))
    if tip is None:
        raise RepositoryError(
            f"branch {proposal.branch} of proposal {proposal.id} does not exist in {repo.root}: "
            "restore it (git reflog shows where it pointed) or reject the proposal"
        )
    return tip


def conflict_error(proposal: Proposal, branch: str, error: MergeConflict) -> MergeConflict:
    """Name the conflicting files and the git commands that resolve the conflict."""
    files = ", ".join(error.paths) or "unknown files"
    return MergeConflict(
        f"proposal {proposal.id} conflicts with {branch} in {files}; nothing was changed. Resolve it on the proposal "
        f"branch: 'git switch {proposal.branch} && git merge {branch}', fix the files, commit, then approve again; "
        f"or reject it ('protocol reject {proposal.id} --reason ...') and propose again from the feedback",
        error.paths,
    )


def replay_cases_for(repo: LibraryRepo, feedback: Feedback, record: AnswerRecord, cases_file: Path | None) -> ReplayCases:
    cases = find_cases(cases_file, repo.root)
    cases.feedback_case = feedback_case(feedback, record)
    return cases


@dataclass
class ReviewView:
    """Everything a reviewer needs: the diff, the feedback, the analysis, flags and the replay."""

    proposal: Proposal
    feedback: Feedback
    query: str
    answer_chosen: list[str]
    library_branch: str | None
    current: str
    tip: str | None
    diff: str
    flags: list[Flag] = field(default_factory=list)
    replay: ReplayResult | None = None
    conflict: list[str] | None = None
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = self.proposal.to_json()
        data.update(
            {
                "feedback": self.feedback.to_json(),
                "query": self.query,
                "answer_chosen": self.answer_chosen,
                "library_branch": self.library_branch,
                "library_commit": self.current,
                "branch_tip": self.tip,
                "diff": self.diff,
                "flags": [flag.to_json() for flag in self.flags],
                "replay": self.replay.to_json() if self.replay else self.proposal.replay,
                "conflict": self.conflict,
                "notices": self.notices,
            }
        )
        return data


def review_proposal(
    proposal_id: str,
    library_option: Path | str | None = None,
    *,
    cases_file: Path | None = None,
    with_model: bool = False,
    model: ChatModel | None = None,
    model_option: Path | None = None,
) -> ReviewView:
    """Show a proposal as it would merge now, replaying the cases again when the branch or library moved.

    Works on a detached HEAD, where HEAD is used in place of the library branch. Side effect: a new
    replay result is stored with the proposal.
    """
    proposal = get_proposal(proposal_id)
    feedback = get_feedback(proposal.feedback_id)
    record = get_record(feedback.answer_id)
    repo = repository_for(proposal, library_option)
    branch = repo.branch()
    current = repo.branch_tip(branch) if branch else repo.text("rev-parse", "HEAD")
    tip = repo.resolve_commit(branch_ref(proposal))
    view = ReviewView(proposal, feedback, record.query, record.chosen, branch, current, tip, diff="")
    if branch is None:
        view.notices.append("the library repository is on a detached HEAD: the proposal is shown against HEAD")
    if tip is None:
        view.notices.append(f"branch {proposal.branch} no longer exists; the stored replay is shown")
        return view

    # Once merged, the tip is an ancestor of the library branch, so the diff starts from the proposal's own base.
    start = repo.merge_base(current, tip) if proposal.status == "pending" else repo.merge_base(proposal.base_commit, tip)
    view.diff = repo.diff(start or proposal.base_commit, tip)
    view.flags = instruction_flags(feedback.comment, "feedback comment") + diff_flags(view.diff, feedback.comment)
    if proposal.status != "pending":
        view.replay = ReplayResult.from_json(proposal.replay) if proposal.replay else None
        return view

    try:
        merged = repo.merge_trees(current, tip)
    except MergeConflict as error:
        view.conflict = error.paths
        view.notices.append(str(conflict_error(proposal, branch or "HEAD", error)))
        return view
    view.replay = cached_or_new_replay(repo, proposal, current, merged, replay_cases_for(repo, feedback, record, cases_file),
                                       with_model, model, model_option)
    return view


def cached_or_new_replay(
    repo: LibraryRepo, proposal: Proposal, current: str, proposed: str, cases: ReplayCases,
    with_model: bool, model: ChatModel | None, model_option: Path | None,
) -> ReplayResult:
    """Return the stored replay when it was computed for the same inputs, else replay and store it."""
    if proposal.replay:
        stored = ReplayResult.from_json(proposal.replay)
        if stored.matches(current, proposed, with_model, cases):
            return stored
    if with_model and model is None:
        model = load_chat_model(model_option)
    result = replay_trees(repo, current, proposed, cases, model if with_model else None)
    proposal.replay = result.to_json()
    save_replay(proposal.id, proposal.replay)
    return result


def is_protocol_path(repo: LibraryRepo, path: str) -> bool:
    """Return whether a repository path is a protocol file directly in the library folder."""
    parent, _, name = path.rpartition("/")
    return parent == repo.prefix and name.endswith(".md") and name not in NOT_PROTOCOLS and not name.startswith((".", "_"))


def front_value(content: bytes | None, key: str) -> str | None:
    """Return one front-matter value of a file as text, or None when the file or key is missing or invalid."""
    if content is None:
        return None
    try:
        value = load_front(split_text(content.decode("utf-8")).front).get(key)
    except (ProposalError, UnicodeDecodeError):
        return None
    return None if value is None else str(value)
