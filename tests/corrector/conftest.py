"""Fixtures for the error loop: small routing libraries in real git repositories, answers, CLI calls, repository snapshots."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import app
from router.audit import AnswerRecord
from router.library import load_library
from router.routing import RouteIndex
from router.service import ask
from tests.conftest import protocol_text, write_library

runner = CliRunner()

# A query that the rules send to alpha (it contains "fever") although it describes beta's tick-borne rash.
MISROUTED_QUERY = "fever and rash after hiking in the woods"


def routing_files() -> dict[str, str]:
    """Four protocols: alpha and beta share the 'fever' trap, gamma and delta the 'chest pain' one."""
    return {
        "alpha.md": protocol_text("alpha", keywords="\n  - any: [fever]", example_queries='\n  - "high fever on a hot day"'),
        "beta.md": protocol_text("beta", keywords="\n  - any: [tick bite]", example_queries='\n  - "tick bite on the leg"'),
        "gamma.md": protocol_text("gamma", keywords="\n  - any: [chest pain]"),
        "delta.md": protocol_text("delta", keywords="\n  - any: [dizziness]"),
    }


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return write_library(tmp_path / "lib", routing_files(), commit=True)


def invoke(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def invoke_json(*args: str, input: str | None = None) -> Any:
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def answer(library: Path, query: str) -> AnswerRecord:
    """Route a query rules-only, as 'protocol ask' does without a model, and store the audit record."""
    loaded = load_library(library)
    return ask(query, loaded, RouteIndex(loaded), None, None).record


def record_feedback(answer_id: str, expected: str, kind: str = "wrong-protocol", comment: str = "it was the other one") -> str:
    data = invoke_json("feedback", answer_id, "--kind", kind, "--expected", expected, "--comment", comment)
    return data["feedback_id"]


def propose(library: Path, query: str, expected: str, *extra: str) -> dict[str, Any]:
    """Answer a query, give wrong-protocol feedback and propose; return the proposal JSON."""
    record = answer(library, query)
    feedback_id = record_feedback(record.id, expected)
    return invoke_json("propose", feedback_id, "--library", str(library), *extra)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def write_cases(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


@dataclass(frozen=True)
class RepoState:
    """Everything a failed command must leave as it was: refs, HEAD, index, status and file bytes."""

    refs: str
    head: str
    index: bytes
    status: str
    files: dict[str, bytes]


def repo_state(root: Path) -> RepoState:
    files = {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }
    index = (root / ".git" / "index").read_bytes()
    head = (root / ".git" / "HEAD").read_text()
    status = git(root, "--no-optional-locks", "status", "--porcelain=v1", "-uall")  # without refreshing the index
    return RepoState(git(root, "for-each-ref"), head, index, status, files)
