"""Feedback and proposals in the audit database, beside the answers they refer to."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from router.audit import connect, rows_by_id_prefix

from corrector.errors import FeedbackError, ProposalError

FeedbackKind = Literal["wrong-protocol", "wrong-content", "missing-protocol"]
FEEDBACK_KINDS: tuple[str, ...] = get_args(FeedbackKind)
ProposalStatus = Literal["pending", "approved", "rejected"]
ID_PREFIX = re.compile(r"[0-9a-f]{4,32}")  # ids are hexadecimal, so no prefix can carry SQL LIKE wildcards


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_id(length: int) -> str:
    return uuid.uuid4().hex[:length]


@dataclass
class Feedback:
    """A clinician's statement of what was wrong with one recorded answer."""

    answer_id: str
    kind: FeedbackKind
    expected: list[str]  # protocol ids that should have been used, or the id of a missing protocol
    comment: str
    author: str | None = None
    id: str = field(default_factory=lambda: new_id(12))
    created_at: str = field(default_factory=now_utc)

    def to_json(self) -> dict[str, Any]:
        return {
            "feedback_id": self.id,
            "created_at": self.created_at,
            "answer_id": self.answer_id,
            "kind": self.kind,
            "expected": self.expected,
            "comment": self.comment,
            "author": self.author,
        }


@dataclass
class Proposal:
    """A protocol change drafted from feedback, committed on its own branch and awaiting review."""

    feedback_id: str
    kind: FeedbackKind
    repo_root: str
    library_path: str
    branch: str
    base_commit: str
    proposed_commit: str  # the commit written by 'protocol propose'; the branch tip may have moved on
    protocol_ids: list[str]
    paths: list[str]  # repository-relative paths, as UTF-8
    summary: str
    analysis: str
    replay: dict[str, Any] | None = None
    status: ProposalStatus = "pending"
    decided_at: str | None = None
    reviewer: str | None = None
    reason: str | None = None
    merge_commit: str | None = None
    id: str = field(default_factory=lambda: new_id(8))
    created_at: str = field(default_factory=now_utc)

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal_id": self.id,
            "created_at": self.created_at,
            "feedback_id": self.feedback_id,
            "kind": self.kind,
            "status": self.status,
            "library": self.library_path,
            "repository": self.repo_root,
            "branch": self.branch,
            "base_commit": self.base_commit,
            "proposed_commit": self.proposed_commit,
            "protocols": self.protocol_ids,
            "paths": self.paths,
            "summary": self.summary,
            "analysis": self.analysis,
            "replay": self.replay,
            "decided_at": self.decided_at,
            "reviewer": self.reviewer,
            "reason": self.reason,
            "merge_commit": self.merge_commit,
        }


def save_feedback(feedback: Feedback, path: Path | None = None) -> None:
    """Store one feedback row."""
    with connect(path) as connection:
        connection.execute(
            "INSERT INTO feedback (id, created_at, answer_id, kind, expected_json, comment, author) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (feedback.id, feedback.created_at, feedback.answer_id, feedback.kind, json.dumps(feedback.expected),
             feedback.comment, feedback.author),
        )


def row_to_feedback(row: sqlite3.Row) -> Feedback:
    return Feedback(
        id=row["id"],
        created_at=row["created_at"],
        answer_id=row["answer_id"],
        kind=row["kind"],
        expected=json.loads(row["expected_json"]),
        comment=row["comment"],
        author=row["author"],
    )


def get_feedback(feedback_id: str, path: Path | None = None) -> Feedback:
    """Return one feedback by id (a unique prefix is enough) or raise FeedbackError."""
    if not ID_PREFIX.fullmatch(feedback_id):
        raise FeedbackError(f"invalid feedback id {feedback_id!r}: use the hexadecimal id that 'protocol feedback' printed")
    rows = rows_by_id_prefix("feedback", feedback_id, path)
    if not rows:
        raise FeedbackError(f"no feedback with id {feedback_id!r}: 'protocol feedback ANSWER_ID' records one")
    if len(rows) > 1:
        raise FeedbackError(f"feedback id {feedback_id!r} is ambiguous: give more characters")
    return row_to_feedback(rows[0])


def feedback_for_answer(answer_id: str, path: Path | None = None) -> list[Feedback]:
    """Return every feedback on one answer, oldest first."""
    with connect(path) as connection:
        rows = connection.execute(
            "SELECT * FROM feedback WHERE answer_id = ? ORDER BY created_at, rowid", (answer_id,)
        ).fetchall()
    return [row_to_feedback(row) for row in rows]


def save_proposal(proposal: Proposal, path: Path | None = None) -> None:
    """Store a new proposal row."""
    with connect(path) as connection:
        connection.execute(
            """INSERT INTO proposals (id, created_at, feedback_id, kind, repo_root, library_path, branch,
            base_commit, proposed_commit, protocol_ids_json, paths_json, summary, analysis, replay_json, status)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                proposal.id, proposal.created_at, proposal.feedback_id, proposal.kind, proposal.repo_root,
                proposal.library_path, proposal.branch, proposal.base_commit, proposal.proposed_commit,
                json.dumps(proposal.protocol_ids, ensure_ascii=False), json.dumps(proposal.paths, ensure_ascii=False),
                proposal.summary, proposal.analysis, json.dumps(proposal.replay) if proposal.replay else None,
                proposal.status,
            ),
        )


def save_replay(proposal_id: str, replay: dict[str, Any], path: Path | None = None) -> None:
    """Replace the stored replay result of a proposal."""
    with connect(path) as connection:
        connection.execute("UPDATE proposals SET replay_json = ? WHERE id = ?", (json.dumps(replay), proposal_id))


def record_decision(proposal: Proposal, path: Path | None = None) -> None:
    """Store a proposal's status, branch, reviewer, reason and merge commit after approval or rejection."""
    with connect(path) as connection:
        connection.execute(
            """UPDATE proposals SET status = ?, branch = ?, decided_at = ?, reviewer = ?, reason = ?,
            merge_commit = ?, replay_json = ? WHERE id = ?""",
            (
                proposal.status, proposal.branch, proposal.decided_at, proposal.reviewer, proposal.reason,
                proposal.merge_commit, json.dumps(proposal.replay) if proposal.replay else None, proposal.id,
            ),
        )


def row_to_proposal(row: sqlite3.Row) -> Proposal:
    return Proposal(
        id=row["id"],
        created_at=row["created_at"],
        feedback_id=row["feedback_id"],
        kind=row["kind"],
        repo_root=row["repo_root"],
        library_path=row["library_path"],
        branch=row["branch"],
        base_commit=row["base_commit"],
        proposed_commit=row["proposed_commit"],
        protocol_ids=json.loads(row["protocol_ids_json"]),
        paths=json.loads(row["paths_json"]),
        summary=row["summary"],
        analysis=row["analysis"],
        replay=json.loads(row["replay_json"]) if row["replay_json"] else None,
        status=row["status"],
        decided_at=row["decided_at"],
        reviewer=row["reviewer"],
        reason=row["reason"],
        merge_commit=row["merge_commit"],
    )


def get_proposal(proposal_id: str, path: Path | None = None) -> Proposal:
    """Return one proposal by id (a unique prefix is enough) or raise ProposalError."""
    if not ID_PREFIX.fullmatch(proposal_id):
        raise ProposalError(f"invalid proposal id {proposal_id!r}: use the hexadecimal id that 'protocol review' lists")
    rows = rows_by_id_prefix("proposals", proposal_id, path)
    if not rows:
        raise ProposalError(f"no proposal with id {proposal_id!r}: 'protocol review' lists pending proposals")
    if len(rows) > 1:
        raise ProposalError(f"proposal id {proposal_id!r} is ambiguous: give more characters")
    return row_to_proposal(rows[0])


def list_proposals(status: ProposalStatus | None = "pending", path: Path | None = None) -> list[Proposal]:
    """Return proposals with this status (every proposal for None), oldest first."""
    query = "SELECT * FROM proposals"
    parameters: tuple[str, ...] = ()
    if status is not None:
        query += " WHERE status = ?"
        parameters = (status,)
    with connect(path) as connection:
        rows = connection.execute(query + " ORDER BY created_at, rowid", parameters).fetchall()
    return [row_to_proposal(row) for row in rows]


def proposals_for_feedback(feedback_ids: list[str], path: Path | None = None) -> list[Proposal]:
    """Return the proposals drafted from any of these feedback ids."""
    if not feedback_ids:
        return []
    marks = ", ".join("?" for _ in feedback_ids)
    with connect(path) as connection:
        rows = connection.execute(
            f"SELECT * FROM proposals WHERE feedback_id IN ({marks}) ORDER BY created_at, rowid", tuple(feedback_ids)
        ).fetchall()
    return [row_to_proposal(row) for row in rows]

