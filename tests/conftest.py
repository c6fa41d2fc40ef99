"""Shared fixtures: an isolated data folder per test, the real default model, small libraries."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import git
import pytest

from router.model import DEFAULT_MODEL_NAME, default_model_path, hash_cache_path

# Read before any test changes PROTOCOL_ROUTER_HOME: the model assembled by the set-up.
REAL_MODEL = default_model_path()
REAL_HASH_CACHE = hash_cache_path()
REPO = Path(__file__).resolve().parent.parent
STARTER = REPO / "protocols"


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the data folder at a temporary one, with the real model linked in when it exists."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    if REAL_MODEL.exists():
        os.symlink(REAL_MODEL, home / "models" / DEFAULT_MODEL_NAME)
        if REAL_HASH_CACHE.exists():
            shutil.copy(REAL_HASH_CACHE, home / "model-hashes.json")
    monkeypatch.setenv("PROTOCOL_ROUTER_HOME", str(home))
    monkeypatch.delenv("PROTOCOL_LIBRARY", raising=False)
    monkeypatch.delenv("PROTOCOL_MODEL", raising=False)
    return home


@pytest.fixture
def require_model() -> Path:
    """Fail with the fix when the default model has not been assembled."""
    if not REAL_MODEL.exists():
        pytest.fail(f"the default model is missing at {REAL_MODEL}: run ./setup.sh first")
    return REAL_MODEL


def protocol_text(protocol_id: str = "demo-protocol", **overrides: str) -> str:
    """Return a minimal valid protocol file; keyword arguments replace front-matter lines."""
    fields = {
        "id": protocol_id,
        "title": f"Demo protocol {protocol_id}",
        "version": '"1.0"',
        "status": "active",
        "owner": "test team",
        "last_reviewed": "2026-01-01",
        "review_due": "2099-01-01",
        "sources": '\n  - title: "A named public source"\n    url: https://example.org/source\n    licence: CC BY 4.0',
        "keywords": "\n  - any: [demo finding]",
    }
    fields.update(overrides)
    header = "\n".join(f"{key}: {value}" for key, value in fields.items() if value is not None)
    body = textwrap.dedent(
        """
        ## Key actions
        1. Do the first thing.
        2. Give the demo drug.
           - drug: demodrug
           - dose: 1 mg/kg
           - route: IV
           - timing: now

        ## Contraindications
        - Nothing in this demo.
        """
    )
    return f"---\n{header}\n---\n{body}"


def write_library(folder: Path, files: dict[str, str], commit: bool = False) -> Path:
    """Write protocol files into a folder, optionally as the first commit of a git repository."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    if commit:
        repo = git.Repo.init(folder, initial_branch="main")
        repo.index.add(sorted(files))
        author = git.Actor("Test Author", "author@example.org")
        repo.index.commit("Add protocols", author=author, committer=author)
    return folder


def read_json(text: str) -> object:
    return json.loads(text)
