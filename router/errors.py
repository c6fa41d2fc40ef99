"""Typed errors raised by the library code; cli.py maps them to messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class RouterError(Exception):
    """Base class of every error that the command line shows as one clear message."""


@dataclass(frozen=True)
class Problem:
    """One finding about a protocol file: where it is, what is wrong and how serious it is."""

    path: str
    line: int
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        label = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}: {label}{self.message}"


class LibraryError(RouterError):
    """A protocol library that cannot be read or holds invalid files."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ProtocolNotFound(RouterError):
    """A protocol id that the library does not contain."""


class ModelError(RouterError):
    """A model file that is missing, truncated, corrupt or cannot be loaded."""


class QueryError(RouterError):
    """A query that cannot be handled, such as one that is not valid text."""


class AuditError(RouterError):
    """An audit record that is missing or a database that cannot be opened."""
