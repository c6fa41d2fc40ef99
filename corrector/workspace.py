"""Materialise library versions from git into temporary folders, load them and compare their checks."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from router.errors import Problem
from router.library import Library, load_library, protocol_files, resolve_library_path
from router.parsing import parse_protocol

from corrector.errors import ProposalInvalid
from corrector.gitrepo import LibraryRepo


def choose_library(option: Path | str | None, recorded: str | None) -> Path:
    """Choose a library folder: --library, then PROTOCOL_LIBRARY, then the recorded folder, then the starter library."""
    if option or os.environ.get("PROTOCOL_LIBRARY"):
        return resolve_library_path(option)
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    return resolve_library_path(None)


@dataclass
class Snapshot:
    """A library version written to a temporary folder: the loaded library and each file's text."""

    folder: Path
    library: Library
    texts: dict[str, str]  # file name -> text, for the protocol files of the folder

    def name_of(self, protocol_id: str) -> str:
        return Path(self.library.get(protocol_id).path).name


@contextmanager
def materialised(repo: LibraryRepo, treeish: str, overlay: dict[str, bytes] | None = None) -> Iterator[Snapshot]:
    """Yield the library as stored in `treeish`, with `overlay` (file name -> bytes) written on top.

    The temporary folder is removed afterwards; the repository is only read.
    """
    with tempfile.TemporaryDirectory(prefix="protocol-router-library-") as temporary:
        folder = repo.materialise(treeish, Path(temporary) / (repo.folder.name or "library"))
        for name, content in (overlay or {}).items():
            (folder / name).write_bytes(content)
        yield load_snapshot(folder)


def load_snapshot(folder: Path) -> Snapshot:
    texts = {path.name: path.read_text(encoding="utf-8", errors="replace") for path in protocol_files(folder)}
    return Snapshot(folder=folder, library=load_library(folder, today=dt.date.today()), texts=texts)


def library_from_texts(folder: Path, texts: dict[str, str]) -> Library:
    """Parse file texts into a library without writing them, for trying routing edits in memory.

    Files that do not parse are left out; whole-library checks are not run.
    """
    protocols = {}
    for name, text in sorted(texts.items()):
        protocol, _ = parse_protocol(folder / name, text)
        if protocol is not None and protocol.id not in protocols:
            protocols[protocol.id] = protocol
    return Library(path=folder, protocols=protocols)


def relabel(problem: Problem, snapshot_folder: Path, real_folder: Path) -> Problem:
    """Show a problem found in a temporary copy under the library's real folder."""
    path = Path(problem.path)
    label = str(real_folder / path.relative_to(snapshot_folder)) if path.is_relative_to(snapshot_folder) else problem.path
    return Problem(label, problem.line, problem.message, problem.severity)


def new_errors(before: Snapshot, after: Snapshot, real_folder: Path) -> list[Problem]:
    """Return the errors of `after` that `before` does not have, labelled with real paths.

    Errors that a file already had before the change do not block it, so one broken protocol
    does not stop proposals for the others.
    """
    known = {(Path(problem.path).name, problem.message) for problem in before.library.errors}
    return [
        relabel(problem, after.folder, real_folder)
        for problem in after.library.errors
        if (Path(problem.path).name, problem.message) not in known
    ]


def require_valid(before: Snapshot, after: Snapshot, real_folder: Path, what: str) -> None:
    """Raise ProposalInvalid, with every new problem, when `after` fails the checks of 'protocol check'."""
    problems = new_errors(before, after, real_folder)
    if problems:
        raise ProposalInvalid(f"{what} fails 'protocol check' with {len(problems)} new errors, so nothing was written", problems)
