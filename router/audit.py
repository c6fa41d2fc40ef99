"""The audit record of every answer, in SQLite, with numbered append-only migrations."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.errors import AuditError
from router.paths import data_home

# Each entry runs once, in order; never edit one that has shipped, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE answers (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        query TEXT NOT NULL,
        query_cut INTEGER NOT NULL DEFAULT 0,
        library_path TEXT NOT NULL,
        library_commit TEXT,
        candidates_json TEXT NOT NULL,
        chosen_json TEXT NOT NULL,
        choice_source TEXT NOT NULL,
        choice_notice TEXT,
        citations_json TEXT NOT NULL,
        model_path TEXT,
        model_sha256 TEXT,
        answer TEXT NOT NULL,
        no_match INTEGER NOT NULL,
        warnings_json TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX answers_created_at ON answers (created_at);
    """,
    """
    ALTER TABLE answers ADD COLUMN probe_json TEXT;
    """,
    """
    CREATE TABLE feedback (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        answer_id TEXT NOT NULL REFERENCES answers (id),
        kind TEXT NOT NULL,
        expected_json TEXT NOT NULL,
        comment TEXT NOT NULL,
        author TEXT
    );
    CREATE INDEX feedback_answer_id ON feedback (answer_id);
    """,
    """
    CREATE TABLE proposals (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        feedback_id TEXT NOT NULL REFERENCES feedback (id),
        kind TEXT NOT NULL,
        repo_root TEXT NOT NULL,
        library_path TEXT NOT NULL,
        branch TEXT NOT NULL,
        base_commit TEXT NOT NULL,
        proposed_commit TEXT NOT NULL,
        protocol_ids_json TEXT NOT NULL,
        paths_json TEXT NOT NULL,
        summary TEXT NOT NULL,
        analysis TEXT NOT NULL,
        replay_json TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        decided_at TEXT,
        reviewer TEXT,
        reason TEXT,
        merge_commit TEXT
    );
    CREATE INDEX proposals_status ON proposals (status);
    CREATE INDEX proposals_feedback_id ON proposals (feedback_id);
    """,
)


@dataclass
class AnswerRecord:
    """Everything needed to reproduce and audit one answer."""

    query: str
    library_path: str
    library_commit: str | None
    candidates: list[dict[str, Any]]
    chosen: list[str]
    choice_source: str
    citations: list[dict[str, Any]]
    model_path: str | None
    model_sha256: str | None
    answer: str
    no_match: bool
    query_cut: bool = False
    choice_notice: str | None = None
    warnings: list[str] = field(default_factory=list)
    probe: dict[str, Any] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return {
            "answer_id": self.id,
            "created_at": self.created_at,
            "query": self.query,
            "query_cut": self.query_cut,
            "library": {"path": self.library_path, "commit": self.library_commit},
            "candidates": self.candidates,
            "chosen": self.chosen,
            "choice_source": self.choice_source,
            "choice_notice": self.choice_notice,
            "citations": self.citations,
            "model": {"path": self.model_path, "sha256": self.model_sha256},
            "answer": self.answer,
            "no_match": self.no_match,
            "warnings": self.warnings,
            "probe": self.probe,
        }


def audit_path() -> Path:
    return data_home() / "audit.sqlite3"


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """Open the audit database, bring its schema up to date and close it afterwards."""
    path = path or audit_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30)
    except (OSError, sqlite3.Error) as error:
        raise AuditError(f"cannot open the audit database {path}: {error}; check PROTOCOL_ROUTER_HOME") from None
    try:
        connection.row_factory = sqlite3.Row
        migrate(connection)
        yield connection
        connection.commit()
    except sqlite3.Error as error:
        raise AuditError(
            f"audit database {path} failed: {error}; if the file is damaged, move it aside "
            "(a new one is created) and keep the old one for the audit trail"
        ) from None
    finally:
        connection.close()


def migrate(connection: sqlite3.Connection) -> None:
    """Apply the migrations that this database has not seen yet, each in its own transaction."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        connection.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


def save_record(record: AnswerRecord, path: Path | None = None) -> None:
    """Store one answer record."""
    with connect(path) as connection:
        connection.execute(
            """INSERT INTO answers (id, created_at, query, query_cut, library_path, library_commit,
            candidates_json, chosen_json, choice_source, choice_notice, citations_json, model_path,
            model_sha256, answer, no_match, warnings_json, probe_json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                record.id, record.created_at, record.query, int(record.query_cut), record.library_path,
                record.library_commit, json.dumps(record.candidates), json.dumps(record.chosen),
                record.choice_source, record.choice_notice, json.dumps(record.citations), record.model_path,
                record.model_sha256, record.answer, int(record.no_match), json.dumps(record.warnings),
                json.dumps(record.probe) if record.probe is not None else None,
            ),
        )


def row_to_record(row: sqlite3.Row) -> AnswerRecord:
    return AnswerRecord(
        id=row["id"],
        created_at=row["created_at"],
        query=row["query"],
        query_cut=bool(row["query_cut"]),
        library_path=row["library_path"],
        library_commit=row["library_commit"],
        candidates=json.loads(row["candidates_json"]),
        chosen=json.loads(row["chosen_json"]),
        choice_source=row["choice_source"],
        choice_notice=row["choice_notice"],
        citations=json.loads(row["citations_json"]),
        model_path=row["model_path"],
        model_sha256=row["model_sha256"],
        answer=row["answer"],
        no_match=bool(row["no_match"]),
        warnings=json.loads(row["warnings_json"]),
        probe=json.loads(row["probe_json"]) if row["probe_json"] else None,
    )


def recent_records(limit: int = 20, path: Path | None = None) -> list[AnswerRecord]:
    """Return the newest records first."""
    with connect(path) as connection:
        rows = connection.execute("SELECT * FROM answers ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
    return [row_to_record(row) for row in rows]


def get_record(answer_id: str, path: Path | None = None) -> AnswerRecord:
    """Return one record by id (a unique prefix is enough) or raise AuditError."""
    if not re.fullmatch(r"[0-9a-f]{4,32}", answer_id):
        raise AuditError(f"invalid answer id {answer_id!r}: use the hexadecimal id that 'protocol log' shows")
    rows = rows_by_id_prefix("answers", answer_id, path)
    if not rows:
        raise AuditError(f"no answer with id {answer_id!r}: 'protocol log' lists recent answers")
    if len(rows) > 1:
        raise AuditError(f"answer id {answer_id!r} is ambiguous: give more characters")
    return row_to_record(rows[0])


ID_TABLES = ("answers", "feedback", "proposals")


def rows_by_id_prefix(table: str, prefix: str, path: Path | None = None) -> list[sqlite3.Row]:
    """Return at most two rows whose id starts with `prefix`, so callers can tell unique from ambiguous."""
    if table not in ID_TABLES:
        raise ValueError(f"unknown audit table {table!r}")
    with connect(path) as connection:
        return connection.execute(f"SELECT * FROM {table} WHERE id LIKE ? || '%' LIMIT 2", (prefix,)).fetchall()


def update_probe(answer_id: str, probe: dict[str, Any], path: Path | None = None) -> None:
    """Attach a probe result to an existing record."""
    with connect(path) as connection:
        connection.execute("UPDATE answers SET probe_json = ? WHERE id = ?", (json.dumps(probe), answer_id))
