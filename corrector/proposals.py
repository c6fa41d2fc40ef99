"""Turn feedback into a proposal: analyse the failure, draft the change, validate it, commit it on its own branch."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from router.audit import AnswerRecord, get_record
from router.choice import ChatModel
from router.evaluate import Case
from router.model import load_llama, resolve_model

from corrector.drafting import draft_content_change, template_protocol
from corrector.errors import ProposalError, RepositoryError
from corrector.gitrepo import TOOL_IDENTITY, LibraryRepo
from corrector.replay import ReplayCases, ReplayResult, example_cases, find_cases, replay
from corrector.routingfix import draft_routing_change
from corrector.store import Feedback, Proposal, get_feedback, save_proposal, save_replay
from corrector.workspace import Snapshot, choose_library, library_from_texts, materialised, require_valid

MAX_SLUG = 40
MAX_SUBJECT = 72


@dataclass
class Draft:
    """The files a proposal writes (file name in the library folder -> text) and why."""

    texts: dict[str, str]
    protocol_ids: list[str]
    summary: str
    analysis: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """Return a branch-name-safe slug: lower-case ASCII letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_SLUG].strip("-") or "change"


def load_chat_model(model_option: Path | None) -> ChatModel:
    """Load the model named by --model, PROTOCOL_MODEL or the default, verified by SHA-256."""
    return load_llama(resolve_model(model_option))


def feedback_case(feedback: Feedback, record: AnswerRecord) -> Case:
    """Return the feedback's query as a case: the expected protocols, or the cited ones for wrong content."""
    return Case(id=f"feedback:{feedback.id}", query=record.query, expected=list(feedback.expected), tags=["feedback"])


def open_repository(folder: Path) -> LibraryRepo:
    if not folder.is_dir():
        raise RepositoryError(f"protocol library {folder} does not exist: pass --library PATH or set PROTOCOL_LIBRARY")
    return LibraryRepo.open(folder)


def draft_change(
    feedback: Feedback, record: AnswerRecord, snapshot: Snapshot, model: ChatModel | None, today: dt.date, guard_cases: list[Case]
) -> Draft:
    """Analyse the failure that the feedback describes and draft the files that fix it.

    Routing edits are chosen to break as few `guard_cases` as possible.
    """
    if feedback.kind == "wrong-content":
        return draft_content(feedback, record, snapshot, model)
    if feedback.kind == "missing-protocol":
        return draft_new_protocol(feedback, record, snapshot, today, guard_cases)
    names = {pid: snapshot.name_of(pid) for pid in snapshot.library.protocols}
    missing = [pid for pid in feedback.expected if pid not in names]
    if missing:
        raise ProposalError(f"the library's branch has no protocol {', '.join(missing)}: was it removed since the feedback?")
    routing = draft_routing_change(record.query, feedback.expected, record.chosen, snapshot.library, snapshot.texts, names, guard_cases)
    return Draft(routing.texts, routing.protocol_ids, routing.summary, routing.analysis)


def draft_content(feedback: Feedback, record: AnswerRecord, snapshot: Snapshot, model: ChatModel | None) -> Draft:
    if model is None:
        raise ProposalError("wrong-content proposals are drafted by the local model, but none was loaded")
    texts: dict[str, str] = {}
    analysis: list[str] = []
    for pid in feedback.expected:
        protocol = snapshot.library.get(pid)
        name = snapshot.name_of(pid)
        content = draft_content_change(protocol, snapshot.texts[name], record.query, record.answer, feedback.comment, model)
        texts[name] = content.text
        analysis += [f"{pid}: {line}" for line in content.analysis]
    return Draft(texts, list(feedback.expected), f"Correct {', '.join(feedback.expected)} from clinician feedback", analysis)


def draft_new_protocol(feedback: Feedback, record: AnswerRecord, snapshot: Snapshot, today: dt.date, guard_cases: list[Case]) -> Draft:
    """Draft a new file from the template, with routing terms that send the feedback query to it."""
    new_id = feedback.expected[0]
    name = f"{new_id}.md"
    if name in snapshot.texts:
        raise ProposalError(f"{name} already exists on the library's branch: use --kind wrong-content or wrong-protocol")
    texts = {**snapshot.texts, name: template_protocol(new_id, None, feedback.id, today)}
    library = library_from_texts(snapshot.folder, texts)
    names = {pid: Path(protocol.path).name for pid, protocol in library.protocols.items()}
    routing = draft_routing_change(record.query, [new_id], record.chosen, library, texts, names, guard_cases)

    drafted = {name: texts[name], **routing.texts}
    analysis = [
        f"No protocol in the library covers the query, so {name} is a new draft (status: draft) from the template.",
        "Its key actions, contraindications and sources are placeholders that a protocol author must write from a named source.",
        *routing.analysis,
    ]
    return Draft(drafted, [new_id, *[pid for pid in routing.protocol_ids if pid != new_id]], f"Add draft protocol {new_id}", analysis)


def commit_message(summary: str, analysis: list[str], proposal_id: str, feedback: Feedback) -> str:
    subject = summary if len(summary) <= MAX_SUBJECT else summary[: MAX_SUBJECT - 3] + "..."
    body = "\n".join(f"- {line}" for line in analysis)
    trailers = f"Proposal: {proposal_id}\nFeedback: {feedback.id}\nAnswer: {feedback.answer_id}"
    return f"{subject}\n\nAnalysis of feedback {feedback.id} ({feedback.kind}):\n{body}\n\n{trailers}\n"


def propose_change(
    feedback_id: str,
    library_option: Path | str | None = None,
    *,
    cases_file: Path | None = None,
    with_model: bool = False,
    model: ChatModel | None = None,
    model_option: Path | None = None,
    today: dt.date | None = None,
) -> tuple[Proposal, ReplayResult]:
    """Draft a change from feedback, commit it on branch proposal/<id>-<slug> and replay the cases.

    The commit is built with git plumbing on top of the library branch's tip; the working tree,
    the index and HEAD are not touched. A draft that fails 'protocol check' is not written.
    Side effects: a new branch in the library repository and one row in the audit database.
    """
    feedback = get_feedback(feedback_id)
    record = get_record(feedback.answer_id)
    repo = open_repository(choose_library(library_option, record.library_path))
    branch = repo.require_branch()
    base = repo.branch_tip(branch)
    if not repo.library_blobs(base):
        raise RepositoryError(f"no file of {repo.folder} is committed on {branch}: commit the protocols first")
    replay_cases = find_cases(cases_file, repo.root)
    replay_cases.feedback_case = feedback_case(feedback, record)
    if model is None and (feedback.kind == "wrong-content" or with_model):
        model = load_chat_model(model_option)

    with materialised(repo, base) as before:
        guard_cases = [*replay_cases.file_cases, *example_cases([before.library])]
        draft = draft_change(feedback, record, before, model, today or dt.date.today(), guard_cases)
        overlay = {name: text.encode("utf-8") for name, text in draft.texts.items()}
        if not draft.texts:
            raise ProposalError("the analysis found nothing to change: edit the protocols by hand on a branch")
        draft.analysis += uncommitted_notes(repo, base, draft)
        with materialised(repo, base, overlay) as after:
            require_valid(before, after, repo.folder, "the drafted change")

    proposal, tree = commit_draft(repo, base, draft, overlay, feedback)
    store_new_proposal(repo, proposal)

    result = replay_trees(repo, base, tree, replay_cases, model if with_model else None)
    proposal.replay = result.to_json()
    save_replay(proposal.id, proposal.replay)
    return proposal, result


def uncommitted_notes(repo: LibraryRepo, base: str, draft: Draft) -> list[str]:
    """Note each drafted file whose working-tree copy differs from the commit that the draft is based on."""
    notes = []
    for name in sorted(draft.texts):
        path = repo.library_path(name)
        if repo.worktree_blob(path) != repo.blob_sha(base, path):
            notes.append(f"{path} has uncommitted changes in the working tree; this proposal is based on the committed version.")
    return notes


def commit_draft(repo: LibraryRepo, base: str, draft: Draft, overlay: dict[str, bytes], feedback: Feedback) -> tuple[Proposal, str]:
    """Write the draft as a commit on top of `base`, without moving any ref; return the proposal and its tree."""
    proposal = Proposal(
        feedback_id=feedback.id, kind=feedback.kind, repo_root=str(repo.root), library_path=str(repo.folder),
        branch="", base_commit=base, proposed_commit="", protocol_ids=draft.protocol_ids,
        paths=sorted(repo.library_path(name) for name in draft.texts), summary=draft.summary,
        analysis="\n".join(draft.analysis),
    )
    proposal.branch = f"proposal/{proposal.id}-{slug('-'.join(draft.protocol_ids) + '-' + feedback.kind)}"
    tree = repo.build_tree(base, {repo.library_path(name): content for name, content in overlay.items()})
    message = commit_message(draft.summary, draft.analysis, proposal.id, feedback)
    proposal.proposed_commit = repo.commit_tree(tree, [base], message, TOOL_IDENTITY, TOOL_IDENTITY)
    return proposal, tree


def store_new_proposal(repo: LibraryRepo, proposal: Proposal) -> None:
    """Create the proposal's branch and its database row; remove the branch again if the row fails."""
    ref = f"refs/heads/{proposal.branch}"
    repo.create_ref(ref, proposal.proposed_commit, f"protocol propose: feedback {proposal.feedback_id}")
    try:
        save_proposal(proposal)
    except Exception:
        repo.run("update-ref", "-d", ref, proposal.proposed_commit)
        raise


def replay_trees(repo: LibraryRepo, current: str, proposed: str, replay_cases: ReplayCases, model: ChatModel | None) -> ReplayResult:
    """Replay the cases against two versions of the library, each read from git into a temporary folder."""
    with materialised(repo, current) as before, materialised(repo, proposed) as after:
        return replay(before.library, after.library, replay_cases, model, current, proposed)
