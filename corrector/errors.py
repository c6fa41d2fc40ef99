"""Typed errors of the error loop; cli.py and corrector.commands map every one to exit code 1."""

from __future__ import annotations

from router.errors import LibraryError, Problem, RouterError


class CorrectorError(RouterError):
    """Base class of the errors raised while recording feedback, proposing or reviewing changes."""


class FeedbackError(CorrectorError):
    """Feedback that is invalid or that the audit database does not contain."""


class ProposalError(CorrectorError):
    """A proposal that cannot be drafted, found or decided."""


class ProposalInvalid(LibraryError, CorrectorError):
    """A proposed library that fails the checks of 'protocol check'; nothing was written."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message, problems)


class ReplayBroken(CorrectorError):
    """An approval that would make evaluation cases fail that passed before."""


class ReviewerUnknown(CorrectorError):
    """No reviewer name and e-mail: neither --reviewer nor git config user.name and user.email."""


class RepositoryError(CorrectorError):
    """A library repository that is missing, or a git command that failed."""


class DetachedHead(RepositoryError):
    """A library repository on a detached HEAD, where there is no branch to write to."""


class IndexLocked(RepositoryError):
    """A .git/index.lock file that another git process holds or left behind."""


class DirtyFiles(RepositoryError):
    """Files that an approval would overwrite but that have uncommitted changes."""


class MergeConflict(RepositoryError):
    """A proposal that does not merge cleanly into the library's branch."""

    def __init__(self, message: str, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths


class LockTimeout(RepositoryError):
    """Another approval held the library's lock file for longer than the wait limit."""
