"""The auditor's view of one past answer: query, candidates, and the exact protocol texts it used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.audit import AnswerRecord, get_record
from router.errors import RouterError
from router.library import git_blob_sha
from router.parsing import parse_protocol

from corrector.gitrepo import LibraryRepo
from corrector.proposals import open_repository
from corrector.store import Feedback, Proposal, feedback_for_answer, proposals_for_feedback
from corrector.workspace import choose_library


@dataclass
class CitedText:
    """One cited protocol, read back from git by the blob SHA that the answer recorded."""

    citation: dict[str, Any]
    found: bool  # whether the repository contains the blob
    text: str | None
    key_actions: str | None
    in_commit: bool | None  # whether the cited commit contains this blob at the cited path; None if unknown
    current_matches: bool | None  # whether the file on disk today is the same blob

    def to_json(self) -> dict[str, Any]:
        return {
            **self.citation, "blob_found": self.found, "in_commit": self.in_commit,
            "current_file_matches": self.current_matches, "key_actions": self.key_actions, "text": self.text,
        }


@dataclass
class AnswerAudit:
    """An answer record with the cited texts, the feedback on it and the proposals drafted from that feedback."""

    record: AnswerRecord
    repository: str | None
    cited: list[CitedText] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = self.record.to_json()
        data.update(
            {
                "repository": self.repository,
                "cited": [item.to_json() for item in self.cited],
                "feedback": [item.to_json() for item in self.feedback],
                "proposals": [item.to_json() for item in self.proposals],
                "notes": self.notes,
            }
        )
        return data


def cited_text(repo: LibraryRepo, citation: dict[str, Any]) -> CitedText:
    """Read one cited blob with git cat-file and check it against the cited commit and today's file."""
    blob = citation.get("blob_sha")
    content = repo.read_object(blob) if blob else None
    if content is None:
        return CitedText(citation, False, None, None, None, None)

    text = content.decode("utf-8", "replace")
    file = Path(citation.get("path") or "")
    protocol, _ = parse_protocol(file, text)
    in_commit = None
    current = None
    try:
        relative = repo.relative(file)
    except ValueError:
        relative = None  # the cited path is outside this repository's working tree
    if relative is not None:
        if citation.get("commit"):
            in_commit = repo.blob_sha(citation["commit"], relative) == blob
        on_disk = repo.root / relative
        current = on_disk.is_file() and git_blob_sha(on_disk.read_bytes()) == blob
    key_actions = protocol.key_actions_text if protocol else None
    return CitedText(citation, True, text, key_actions, in_commit, current)


def audit_answer(answer_id: str, library_option: Path | str | None = None) -> AnswerAudit:
    """Return everything recorded about an answer, with each cited protocol read back at its blob SHA."""
    record = get_record(answer_id)
    folder = choose_library(library_option, record.library_path)
    feedback = feedback_for_answer(record.id)
    audit = AnswerAudit(record, None, feedback=feedback, proposals=proposals_for_feedback([item.id for item in feedback]))
    try:
        repo = open_repository(folder)
    except RouterError as error:
        audit.notes.append(f"the cited texts cannot be read back: {error}")
        return audit

    audit.repository = str(repo.root)
    for citation in record.citations:
        item = cited_text(repo, citation)
        if not item.found:
            reason = "the answer cited an uncommitted file" if not citation.get("commit") else "the blob is not in this repository"
            audit.notes.append(f"{citation.get('id')}: blob {citation.get('blob_sha')} not found ({reason})")
        audit.cited.append(item)
    return audit
