"""The git repository of a protocol library, written through plumbing commands only.

Proposals and approvals build blobs, trees and commits directly in the object database and
move refs with compare-and-swap, so creating a proposal never touches the working tree or
the index. Paths are read from git with core.quotePath=false and -z, so UTF-8 names stay UTF-8.
"""

from __future__ import annotations

import configparser
import fcntl
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.base import IStream

from router.library import git_blob_sha

from corrector.errors import DetachedHead, IndexLocked, LockTimeout, MergeConflict, RepositoryError, ReviewerUnknown

ZERO_SHA = "0" * 40
LOCK_NAME = "protocol-router.lock"
PROPOSAL_BRANCH_PREFIXES = ("proposal/", "approved/", "rejected/")
LOCK_WAIT_SECONDS = 120.0
IDENTITY = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")


@dataclass(frozen=True)
class Identity:
    """A git author or committer: a name and an e-mail address."""

    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Read 'Name <email>'; raise ReviewerUnknown naming the expected form."""
        match = IDENTITY.match(text)
        if not match:
            raise ReviewerUnknown(f"reviewer {text!r} is not of the form 'Name <email>': pass --reviewer \"Jane Doe <jane@example.org>\"")
        return cls(match.group("name"), match.group("email"))


TOOL_IDENTITY = Identity("protocol-router", "protocol-router@localhost")


class LibraryRepo:
    """The git repository that contains a protocol library folder."""

    def __init__(self, repo: git.Repo, folder: Path) -> None:
        self.repo = repo
        self.root = Path(repo.working_tree_dir or folder).resolve()
        self.folder = folder.resolve()
        relative = self.folder.relative_to(self.root)
        self.prefix = relative.as_posix() if relative.parts else ""  # "" when the library is the root
        self.common_dir = Path(repo.common_dir).resolve()

    @classmethod
    def open(cls, folder: Path) -> LibraryRepo:
        """Open the repository of a library folder; raise RepositoryError when there is none."""
        try:
            repo = git.Repo(folder, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise RepositoryError(
                f"protocol library {folder} is not in a git repository: run 'git init' there and commit the protocols"
            ) from None
        if repo.bare or repo.working_tree_dir is None:
            raise RepositoryError(f"{folder} is in a bare git repository: use a clone with a working tree")
        if not repo.head.is_valid():
            raise RepositoryError(f"the git repository of {folder} has no commit yet: commit the protocols first")
        return cls(repo, folder)

    # Running git

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> tuple[int, bytes, str]:
        """Run one git command in the repository root; return status, stdout bytes and stderr."""
        command = ["git", "-c", "core.quotePath=false", *args]
        status, stdout, stderr = self.repo.git.execute(
            command,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            env=env,
        )
        if check and status != 0:
            raise RepositoryError(f"git {' '.join(args[:2])} failed in {self.root}: {stderr.strip() or f'exit code {status}'}")
        return status, stdout, stderr

    def text(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a git command and return its output as stripped UTF-8 text."""
        return self.run(*args, env=env)[1].decode("utf-8").strip()

    # Branches and commits

    def branch(self) -> str | None:
        """Return the branch checked out in the repository, or None on a detached HEAD."""
        status, stdout, _ = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return stdout.decode("utf-8").strip() if status == 0 else None

    def require_branch(self) -> str:
        """Return the checked-out branch; raise DetachedHead, because writes need a branch to land on."""
        branch = self.branch()
        if branch is None:
            raise DetachedHead(
                f"the library repository {self.root} is on a detached HEAD, so there is no library branch to write to: "
                "check out the library's branch (for example 'git switch main') and try again"
            )
        if branch.startswith(PROPOSAL_BRANCH_PREFIXES):
            raise RepositoryError(
                f"the checked-out branch {branch} is a proposal branch, not the library's branch: "
                "commit your edits there, switch back to the library's branch (for example 'git switch main') and try again"
            )
        return branch

    def resolve_commit(self, revision: str) -> str | None:
        """Return the full SHA of a commit-ish, or None when it names no commit."""
        status, stdout, _ = self.run("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
        return stdout.decode("utf-8").strip() if status == 0 else None

    def branch_tip(self, branch: str) -> str:
        """Return the commit a local branch points to; raise RepositoryError when it does not exist."""
        sha = self.resolve_commit(f"refs/heads/{branch}")
        if sha is None:
            raise RepositoryError(f"branch {branch!r} does not exist in {self.root}: 'git branch --list' shows the branches")
        return sha

    def ref_exists(self, ref: str) -> bool:
        return self.run("show-ref", "--verify", "--quiet", ref, check=False)[0] == 0

    def merge_base(self, left: str, right: str) -> str | None:
        status, stdout, _ = self.run("merge-base", left, right, check=False)
        return stdout.decode("utf-8").strip() if status == 0 else None

    def commit_date(self, commit: str) -> str:
        return self.text("show", "-s", "--format=%cI", commit)

    def identity_from_config(self) -> Identity | None:
        """Return user.name and user.email from git config, or None when either is missing."""
        reader = self.repo.config_reader()
        try:
            name = str(reader.get_value("user", "name"))
            email = str(reader.get_value("user", "email"))
        except (configparser.NoSectionError, configparser.NoOptionError):
            return None
        return Identity(name, email) if name and email else None

    # Paths and blobs

    def library_path(self, name: str) -> str:
        """Return the repository-relative path of a file in the library folder."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def relative(self, path: Path | str) -> str:
        """Return the repository-relative path of a file under the working tree."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def read_blob(self, treeish: str, path: str) -> bytes | None:
        """Return a file's bytes as stored in a commit or tree, or None when it is not there."""
        sha = self.blob_sha(treeish, path)
        return self.read_object(sha) if sha else None

    def blob_sha(self, treeish: str, path: str) -> str | None:
        """Return the blob SHA of a path in a commit or tree, or None when it is not there."""
        status, stdout, _ = self.run("rev-parse", "--verify", "--quiet", f"{treeish}:{path}", check=False)
        return stdout.decode("utf-8").strip() if status == 0 else None

    def read_object(self, sha: str) -> bytes | None:
        """Return the bytes of a blob by SHA (git cat-file blob), or None when the repository lacks it."""
        status, stdout, _ = self.run("cat-file", "blob", sha, check=False)
        return stdout if status == 0 else None

    def library_blobs(self, treeish: str) -> dict[str, str]:
        """Map each file under the library folder in a commit or tree to its blob SHA, by path relative to the folder."""
        args = ["ls-tree", "-r", "-z", treeish]
        if self.prefix:
            args += ["--", f"{self.prefix}/"]
        blobs = {}
        for entry in self.run(*args)[1].decode("utf-8").split("\0"):
            if not entry:
                continue
            info, path = entry.split("\t", 1)
            mode, kind, sha = info.split()
            if kind == "blob":
                inside = path[len(self.prefix) + 1 :] if self.prefix else path
                blobs[inside] = sha
        return blobs

    def write_blob(self, content: bytes) -> str:
        """Store bytes as a blob in the object database and return its SHA."""
        stream = self.repo.odb.store(IStream("blob", len(content), io.BytesIO(content)))
        sha = stream.hexsha
        return sha.decode("ascii") if isinstance(sha, bytes) else sha

    def materialise(self, treeish: str, target: Path) -> Path:
        """Write the library folder as stored in a commit or tree into `target` and return it."""
        target.mkdir(parents=True, exist_ok=True)
        for inside, sha in self.library_blobs(treeish).items():
            destination = target / inside
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(self.read_object(sha) or b"")
        return target

    # Trees, commits and refs

    def build_tree(self, base: str, changes: dict[str, bytes]) -> str:
        """Return a tree: `base` with each repository-relative path replaced by new content.

        A temporary index file (GIT_INDEX_FILE) contains the tree while it is built, so the
        repository's own index is never read or written.
        """
        with tempfile.TemporaryDirectory(prefix="protocol-router-index-") as folder:
            env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
            self.run("read-tree", base, env=env)
            for path, content in sorted(changes.items()):
                mode = self.file_mode(base, path)
                self.run("update-index", "--add", "--cacheinfo", f"{mode},{self.write_blob(content)},{path}", env=env)
            return self.text("write-tree", env=env)

    def file_mode(self, treeish: str, path: str) -> str:
        """Return a path's mode in a tree, or the regular-file mode for a new file."""
        entry = self.run("ls-tree", "-z", treeish, "--", path)[1].decode("utf-8")
        return entry.split(" ", 1)[0] if entry else "100644"

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Identity, committer: Identity) -> str:
        """Create a commit object for a tree and return its SHA; no ref moves."""
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self.text("commit-tree", tree, *parent_args, "-m", message, env=env)

    def create_ref(self, ref: str, sha: str, reason: str) -> None:
        """Create a ref; raise RepositoryError if it already exists."""
        status, _, stderr = self.run("update-ref", "-m", reason, "--create-reflog", ref, sha, ZERO_SHA, check=False)
        if status != 0:
            raise RepositoryError(f"cannot create {ref} in {self.root}: {stderr.strip()}")

    def move_ref(self, ref: str, new: str, old: str, reason: str) -> None:
        """Move a ref from `old` to `new`; raise RepositoryError when it no longer points to `old`."""
        status, _, stderr = self.run("update-ref", "-m", reason, ref, new, old, check=False)
        if status != 0:
            raise RepositoryError(f"{ref} moved while it was being updated ({stderr.strip()}): run the command again")

    def rename_ref(self, old_ref: str, new_ref: str, reason: str) -> str:
        """Point `new_ref` at the commit of `old_ref`, then delete `old_ref`; return that commit."""
        sha = self.resolve_commit(old_ref)
        if sha is None:
            raise RepositoryError(f"{old_ref} does not exist in {self.root}")
        self.create_ref(new_ref, sha, reason)
        self.run("update-ref", "-m", reason, "-d", old_ref, sha)
        return sha

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Return the repository-relative paths that differ between two commits or trees."""
        output = self.run("diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new)[1].decode("utf-8")
        return [path for path in output.split("\0") if path]

    def diff(self, old: str, new: str) -> str:
        """Return the unified diff between two commits or trees, with UTF-8 file names."""
        return self.run("diff", "--no-color", "--no-ext-diff", "--no-renames", old, new, "--")[1].decode("utf-8", "replace")

    def merge_trees(self, ours: str, theirs: str) -> str:
        """Return the tree of a three-way merge of two commits; raise MergeConflict on conflicts.

        git merge-tree --write-tree writes only objects: no ref, index or working-tree file changes.
        It needs git 2.38 or later (tested with git 2.39).
        """
        status, stdout, stderr = self.run("merge-tree", "--write-tree", "-z", "--name-only", ours, theirs, check=False)
        fields = stdout.decode("utf-8").split("\0")
        if status == 0:
            return fields[0].strip()
        if status != 1:
            raise RepositoryError(f"git merge-tree failed in {self.root}: {stderr.strip() or f'exit code {status}'}")
        paths = []
        for field in fields[1:]:
            if not field:
                break
            paths.append(field)
        raise MergeConflict("conflict", sorted(set(paths)))

    # Working tree and index

    def index_lock(self) -> Path:
        return Path(self.repo.git_dir) / "index.lock"

    def check_index_lock(self) -> None:
        """Raise IndexLocked when .git/index.lock exists; the file is reported, never deleted."""
        lock = self.index_lock()
        if lock.exists():
            raise IndexLocked(
                f"{lock} exists, so another git process is using the index or one crashed: "
                f"wait for it to finish; if no git process is running, remove the file yourself ('rm {lock}') and try again"
            )

    def index_entry(self, path: str) -> str | None:
        """Return the blob SHA staged for a path, or None when it is not in the index.

        A path with conflict stages returns "conflict", which never equals a blob SHA.
        """
        output = self.run("ls-files", "-s", "-z", "--", path)[1].decode("utf-8")
        entries = [entry for entry in output.split("\0") if entry]
        if not entries:
            return None
        info = entries[0].split("\t", 1)[0].split()
        return info[1] if len(entries) == 1 and info[2] == "0" else "conflict"

    def worktree_blob(self, path: str) -> str | None:
        """Return the blob SHA of a working-tree file as it is on disk, or None when it does not exist."""
        file = self.root / path
        return git_blob_sha(file.read_bytes()) if file.is_file() else None

    def write_worktree_file(self, path: str, content: bytes) -> None:
        """Replace a working-tree file atomically and stage it, keeping its permission bits."""
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        mode = file.stat().st_mode & 0o777 if file.exists() else 0o644
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=".protocol-router-")
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, file)
        self.run("update-index", "--add", "--", path)

    @contextmanager
    def lock(self, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
        """Hold the library's lock file, so that approvals and rejections run one at a time.

        The lock is an flock on a file in the git directory: the kernel releases it when the
        process ends, so a crash never leaves a stale lock behind. The file itself stays.
        """
        path = self.common_dir / LOCK_NAME
        deadline = time.monotonic() + wait_seconds
        with path.open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(
                            f"another approval or rejection has held {path} for over {wait_seconds:.0f} s: "
                            "wait for it to finish and try again"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
