"""Console helpers shared by every command: stdout and stderr consoles, JSON output, error exit."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from router.errors import LibraryError, RouterError

PIPE_WIDTH = 4096  # columns when piped, so citations and dose lines are never wrapped


def consoles() -> tuple[Console, Console]:
    """Create the stdout and stderr consoles for one invocation; no wrapping and no number highlighting."""
    out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH)
    err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)
    return out, err


def fail(error: RouterError, err: Console) -> NoReturn:
    """Print a library error as one message (and its problems) and exit with code 1."""
    err.print(f"Error: {escape(str(error))}")
    if isinstance(error, LibraryError):
        for problem in error.problems:
            err.print(escape(str(problem)))
    raise typer.Exit(1)


def print_json(out: Console, data: Any) -> None:
    """Print data as JSON without colour, keeping non-ASCII text as UTF-8."""
    out.print_json(json.dumps(data, ensure_ascii=False, default=str), highlight=False)
