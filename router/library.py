"""Load a protocol library from a folder, check it as a whole and locate each file in git."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import git

from router.cache import ParseCache
from router.errors import LibraryError, Problem, ProtocolNotFound
from router.parsing import parse_protocol
from router.protocol import Protocol

STARTER_LIBRARY = Path(__file__).resolve().parent.parent / "protocols"
NOT_PROTOCOLS = {"README.md", "CHANGELOG.md", "TEMPLATE.md"}
MAX_PROTOCOL_BYTES = 1_000_000


@dataclass(frozen=True)
class GitState:
    """The git location of a library: the repository root, the commit at HEAD and the branch."""

    root: Path
    commit: str
    branch: str | None  # None on a detached HEAD


@dataclass
class Library:
    """A validated set of protocols read from one folder, with the problems found on the way."""

    path: Path
    protocols: dict[str, Protocol]
    problems: list[Problem] = field(default_factory=list)
    git: GitState | None = None
    uncommitted: set[str] = field(default_factory=set)  # ids whose file differs from HEAD

    def get(self, protocol_id: str) -> Protocol:
        """Return the protocol with this id or raise ProtocolNotFound naming the known ids."""
        try:
            return self.protocols[protocol_id]
        except KeyError:
            known = ", ".join(sorted(self.protocols)) or "none"
            raise ProtocolNotFound(
                f"no protocol with id {protocol_id!r} in {self.path}; known ids: {known}"
            ) from None

    def commit_of(self, protocol_id: str) -> str | None:
        """Return the commit that contains this protocol exactly as read, or None."""
        if self.git is None or protocol_id in self.uncommitted:
            return None
        return self.git.commit

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]


def resolve_library_path(option: str | Path | None) -> Path:
    """Choose the library folder: the option, then PROTOCOL_LIBRARY, then the starter library."""
    chosen = option or os.environ.get("PROTOCOL_LIBRARY") or STARTER_LIBRARY
    return Path(chosen).expanduser()


def git_blob_sha(content: bytes) -> str:
    """Return the SHA-1 that git gives a blob with this content."""
    header = f"blob {len(content)}\0".encode()
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()


def protocol_files(folder: Path) -> list[Path]:
    """List the protocol files of a folder in a stable order; `read_one` reports any that is not a regular file."""
    return sorted(path for path in folder.glob("*.md") if is_protocol_name(path))


def is_protocol_name(path: Path) -> bool:
    return path.suffix == ".md" and path.name not in NOT_PROTOCOLS and not path.name.startswith((".", "_"))


def load_library(option: str | Path | None = None, *, today: dt.date | None = None) -> Library:
    """Read, validate and index every protocol file; raise LibraryError if none can be used.

    Files with problems are left out and their problems kept in `Library.problems`, so
    that one broken file is reported without hiding the rest of the library.
    """
    folder = resolve_library_path(option)
    if not folder.exists():
        raise LibraryError(f"protocol library {folder} does not exist: pass --library PATH or set PROTOCOL_LIBRARY")
    if not folder.is_dir():
        raise LibraryError(f"protocol library {folder} is not a folder: pass the folder that contains the .md files")

    files = protocol_files(folder)
    if not files:
        raise LibraryError(f"protocol library {folder} contains no protocol files (*.md): run 'protocol init DIR' to start one")

    state = find_git_state(folder)
    committed = committed_blobs(state, folder)
    library = Library(path=folder, protocols={}, git=state)
    cache = ParseCache(folder)
    for path in files:
        read_one(library, path, committed, cache)
    cache.save()

    check_library(library, today or dt.date.today())
    return library


def check_file(path: Path, *, today: dt.date | None = None) -> Library:
    """Validate one protocol file among the other files of its library folder; keep only that file's results.

    The rest of the folder is read so that links to other protocols and shared aliases are checked too.
    """
    if path.is_dir():
        raise LibraryError(f"{path} is a folder, not a protocol file: pass the folder without a file name to check the whole library")
    if not path.exists():
        raise LibraryError(f"protocol file {path} does not exist: pass an existing .md file or a library folder")
    if not is_protocol_name(path):
        raise LibraryError(f"{path} is not a protocol file: protocol files end in .md and are not {', '.join(sorted(NOT_PROTOCOLS))}")

    library = load_library(path.parent, today=today)
    target = path.resolve()
    library.problems = [problem for problem in library.problems if Path(problem.path).resolve() == target]
    library.protocols = {key: protocol for key, protocol in library.protocols.items() if Path(protocol.path).resolve() == target}
    return library


def read_one(library: Library, path: Path, committed: dict[str, str], cache: ParseCache) -> None:
    """Parse one file into the library, or record why it was left out."""
    label = str(path)
    if not path.is_file():
        library.problems.append(Problem(label, 1, "not a regular file (a folder, pipe or broken link): remove it or rename it without .md"))
        return
    try:
        content = path.read_bytes()
    except OSError as error:
        library.problems.append(Problem(label, 1, f"cannot read the file: {error.strerror}"))
        return
    if len(content) > MAX_PROTOCOL_BYTES:
        library.problems.append(Problem(label, 1, f"file is larger than {MAX_PROTOCOL_BYTES} bytes: split it"))
        return
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        library.problems.append(Problem(label, line, "not valid UTF-8 text: save the file as UTF-8"))
        return

    blob = git_blob_sha(content)
    cached = cache.get(path.name, blob)
    if cached is None or cached[0] is not None and cached[0].path != label:
        protocol, problems = parse_protocol(path, text.replace("\r\n", "\n"), label)
        if protocol is not None:
            protocol = protocol.model_copy(update={"blob_sha": blob})
        cache.put(path.name, blob, (protocol, problems))
    else:
        protocol, problems = cached

    library.problems.extend(problems)
    if protocol is None:
        return
    if path.name != f"{protocol.id}.md":
        library.problems.append(
            Problem(label, 2, f"file name does not match id {protocol.id!r}: rename it to {protocol.id}.md", "warning")
        )
    if protocol.id in library.protocols:
        first = library.protocols[protocol.id].path
        library.problems.append(Problem(label, 2, f"duplicate id {protocol.id!r} (also in {first}): give each protocol its own id"))
        return

    library.protocols[protocol.id] = protocol
    if library.git is not None and committed.get(path.name) != blob:
        library.uncommitted.add(protocol.id)


def find_git_state(folder: Path) -> GitState | None:
    """Return the git state of the repository holding `folder`, or None outside git."""
    try:
        repo = git.Repo(folder, search_parent_directories=True)
        commit = repo.head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        # ValueError: a repository with no commit yet has no HEAD to cite.
        return None
    branch = None if repo.head.is_detached else repo.active_branch.name
    return GitState(root=Path(repo.working_tree_dir or folder).resolve(), commit=commit, branch=branch)


def committed_blobs(state: GitState | None, folder: Path) -> dict[str, str]:
    """Map each file name in `folder` to its blob SHA at HEAD."""
    if state is None:
        return {}
    repo = git.Repo(state.root)
    relative = folder.resolve().relative_to(state.root)
    tree = repo.head.commit.tree
    try:
        subtree = tree / relative.as_posix() if relative.parts else tree
    except KeyError:
        return {}
    return {blob.name: blob.hexsha for blob in subtree.blobs}


def check_library(library: Library, today: dt.date) -> None:
    """Add the problems that only show across files: links, shared aliases, review dates."""
    protocols = library.protocols
    left_out = left_out_note(library)
    for protocol in protocols.values():
        label = protocol.path
        line = protocol.key_lines.get("confusable_with", 2)
        for other in protocol.meta.confusable_with:
            if other == protocol.id:
                library.problems.append(Problem(label, line, f"confusable_with names the protocol itself ({other!r}): remove it"))
            elif other not in protocols:
                library.problems.append(
                    Problem(label, line, f"confusable_with names unknown id {other!r}: fix the id or add that protocol{left_out}")
                )
            elif protocol.id not in protocols[other].meta.confusable_with:
                library.problems.append(
                    Problem(label, line, f"confusable_with names {other!r}, but {other!r} does not name {protocol.id!r}: add it there", "warning")
                )
        if protocol.meta.review_due < today:
            library.problems.append(
                Problem(
                    label,
                    protocol.key_lines.get("review_due", 2),
                    f"review_due {protocol.meta.review_due} is in the past: review the protocol and update the dates",
                    "warning",
                )
            )
        if not protocol.meta.keywords and not protocol.meta.aliases:
            library.problems.append(
                Problem(label, 2, "no keywords and no aliases: the router can only reach this protocol by its title", "warning")
            )

    report_shared_aliases(library)


def left_out_note(library: Library) -> str:
    """Name the files left out for errors, since one of them may define the protocol that a link names."""
    read = {protocol.path for protocol in library.protocols.values()}
    failed = sorted({problem.path for problem in library.errors} - read)
    if not failed:
        return ""
    return f" (files left out for errors, which may define it: {', '.join(Path(path).name for path in failed[:3])})"


def report_shared_aliases(library: Library) -> None:
    """Report an alias that two protocols both claim, since it cannot route to either alone."""
    owners: dict[str, str] = {}
    for protocol in library.protocols.values():
        names = {name.casefold() for name in (protocol.meta.title, *protocol.meta.aliases)}
        for name in sorted(names):
            if name in owners and owners[name] != protocol.id:
                library.problems.append(
                    Problem(protocol.path, 2, f"alias {name!r} is also used by {owners[name]!r}: keep it in one protocol")
                )
            owners.setdefault(name, protocol.id)
