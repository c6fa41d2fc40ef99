"""Where the router keeps its data: the assembled model, the audit database and caches."""

from __future__ import annotations

import os
from pathlib import Path

import typer

APP_NAME = "protocol-router"


def data_home() -> Path:
    """Return the data folder: PROTOCOL_ROUTER_HOME, else the platform's application folder."""
    override = os.environ.get("PROTOCOL_ROUTER_HOME")
    if override:
        return Path(override).expanduser()
    return Path(typer.get_app_dir(APP_NAME))
