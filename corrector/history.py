"""Auditor views of a protocol's past: its git history with reviewers and feedback, and its text at a date or commit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.errors import LibraryError, ProtocolNotFound
from router.library import GitState, Library, git_blob_sha, resolve_library_path
from router.parsing import parse_protocol
from router.protocol import Protocol

from corrector.errors import FeedbackError, RepositoryError
from corrector.gitrepo import LibraryRepo
from corrector.proposals import open_repository
from corrector.review import front_value, is_protocol_path
from corrector.store import Feedback, get_feedback

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?$")
FIELD = "\x1f"
LOG_FORMAT = FIELD.join(["%H", "%P", "%an", "%ae", "%aI", "%cn", "%cI", "%s", "%(trailers:only,unfold)"])


@dataclass
class HistoryEntry:
    """One commit on the library branch that changed a protocol file."""

    commit: str
    date: str
    author: str
    committer: str
    subject: str
    change: str  # "added", "modified" or "deleted"
    version: str | None
    status: str | None
    reviewed_by: list[str] = field(default_factory=list)
    feedback_ids: list[str] = field(default_factory=list)
    proposal_ids: list[str] = field(default_factory=list)
    proposed_by: str | None = None  # author of the merged proposal branch, for approvals
    feedback: list[Feedback] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit, "date": self.date, "author": self.author, "committer": self.committer,
            "subject": self.subject, "change": self.change, "version": self.version, "status": self.status,
            "reviewed_by": self.reviewed_by, "feedback_ids": self.feedback_ids, "proposal_ids": self.proposal_ids,
            "proposed_by": self.proposed_by, "feedback": [item.to_json() for item in self.feedback],
        }


@dataclass
class ProtocolHistory:
    """The history of one protocol file on the branch checked out (or HEAD when detached)."""

    protocol_id: str
    path: str
    branch: str | None
    entries: list[HistoryEntry]

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol_id": self.protocol_id, "path": self.path, "branch": self.branch,
            "entries": [entry.to_json() for entry in self.entries],
        }


def find_protocol_path(repo: LibraryRepo, protocol_id: str, commit: str) -> str | None:
    """Return the repository path of the file with this id in a commit: <id>.md first, else by reading each file."""
    expected = repo.library_path(f"{protocol_id}.md")
    if repo.blob_sha(commit, expected):
        return expected
    for inside, sha in sorted(repo.library_blobs(commit).items()):
        path = repo.library_path(inside)
        if is_protocol_path(repo, path) and front_value(repo.read_object(sha), "id") == protocol_id:
            return path
    return None


def history_path(repo: LibraryRepo, protocol_id: str) -> str:
    """Return the path to follow: where the id is at HEAD, else <id>.md if it ever existed."""
    head = repo.text("rev-parse", "HEAD")
    path = find_protocol_path(repo, protocol_id, head)
    if path:
        return path
    fallback = repo.library_path(f"{protocol_id}.md")
    if repo.text("log", "-1", "--format=%H", "HEAD", "--", fallback):
        return fallback
    raise ProtocolNotFound(f"no protocol with id {protocol_id!r} in the history of {repo.folder}: 'protocol list' shows the ids")


def parse_trailers(text: str) -> dict[str, list[str]]:
    trailers: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator and value.strip():
            trailers.setdefault(key.strip().lower(), []).append(value.strip())
    return trailers


def linked_feedback(ids: list[str]) -> list[Feedback]:
    """Return the stored feedback for these ids; ids from another audit database are skipped."""
    found = []
    for feedback_id in ids:
        try:
            found.append(get_feedback(feedback_id))
        except FeedbackError:
            continue  # the trailer names feedback recorded in another data folder; the id is still shown
    return found


def protocol_history(library_option: Path | str | None, protocol_id: str) -> ProtocolHistory:
    """Return every first-parent commit of the checked-out branch that changed the protocol's file.

    Approvals are merge commits, so each entry is one version as it landed. Renamed files are not followed.
    """
    repo = open_repository(resolve_library_path(library_option))
    path = history_path(repo, protocol_id)
    output = repo.run("log", "--first-parent", "-z", f"--format={LOG_FORMAT}", "HEAD", "--", path)[1].decode("utf-8")
    entries = [history_entry(repo, record, path) for record in output.split("\0") if record.strip()]
    return ProtocolHistory(protocol_id, path, repo.branch(), entries)


def history_entry(repo: LibraryRepo, record: str, path: str) -> HistoryEntry:
    commit, parents, author, email, _, committer, date, subject, trailer_text = record.lstrip("\n").split(FIELD)
    parent_list = parents.split()
    content = repo.read_blob(commit, path)
    before = repo.read_blob(parent_list[0], path) if parent_list else None
    if content is None:
        change = "deleted"
    elif before is None:
        change = "added"
    else:
        change = "modified"
    trailers = parse_trailers(trailer_text)
    proposed_by = repo.text("show", "-s", "--format=%an <%ae>", parent_list[1]) if len(parent_list) > 1 else None
    feedback_ids = trailers.get("feedback", [])
    return HistoryEntry(
        commit=commit, date=date, author=f"{author} <{email}>", committer=committer, subject=subject, change=change,
        version=front_value(content, "version"), status=front_value(content, "status"),
        reviewed_by=trailers.get("reviewed-by", []), feedback_ids=feedback_ids,
        proposal_ids=trailers.get("proposal", []), proposed_by=proposed_by, feedback=linked_feedback(feedback_ids),
    )


@dataclass
class ProtocolVersion:
    """A protocol as it was in one commit."""

    protocol: Protocol
    commit: str
    date: str
    path: str
    root: Path

    def as_library(self, folder: Path) -> Library:
        """Wrap the old version in a one-protocol Library whose commit is the old commit, for the show views."""
        state = GitState(root=self.root, commit=self.commit, branch=None)
        return Library(path=folder, protocols={self.protocol.id: self.protocol}, git=state)


def resolve_at(repo: LibraryRepo, at: str) -> str:
    """Return the commit for --at: the last first-parent commit of HEAD on or before a date, or a commit-ish."""
    at = at.strip()
    if DATE.match(at) or DATE_TIME.match(at):
        limit = f"{at} 23:59:59" if DATE.match(at) else at
        commit = repo.text("rev-list", "-1", "--first-parent", f"--before={limit}", "HEAD")
        if not commit:
            raise RepositoryError(f"the library has no commit on or before {at}: 'protocol history ID' lists the dates")
        return commit
    commit = repo.resolve_commit(at)
    if commit is None:
        raise RepositoryError(f"{at!r} is neither a date (YYYY-MM-DD) nor a commit in {repo.root}")
    return commit


def protocol_at(library_folder: Path | str | None, protocol_id: str, at: str) -> ProtocolVersion:
    """Return the protocol as it was at a date (YYYY-MM-DD, end of that day) or a commit, read from git."""
    repo = open_repository(resolve_library_path(library_folder))
    commit = resolve_at(repo, at)
    path = find_protocol_path(repo, protocol_id, commit)
    if path is None:
        raise ProtocolNotFound(f"protocol {protocol_id!r} did not exist at commit {commit[:12]} ({repo.commit_date(commit)})")
    content = repo.read_blob(commit, path) or b""
    protocol, problems = parse_protocol(repo.root / path, content.decode("utf-8", "replace"))
    if protocol is None:
        raise LibraryError(f"{path} at commit {commit[:12]} is not a valid protocol", problems)
    protocol = protocol.model_copy(update={"blob_sha": git_blob_sha(content)})
    return ProtocolVersion(protocol, commit, repo.commit_date(commit), path, repo.root)
