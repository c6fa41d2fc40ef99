"""A parse cache for protocol libraries, so that large libraries load in a fraction of a second.

Entries are keyed by file name and git blob SHA, so a changed file is always parsed again and
an unchanged one never is. The cache lives in the data folder, one file per library folder.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from router.paths import data_home

CACHE_FORMAT = 2  # bump when Protocol or Problem change shape


class ParseCache:
    """Parsed protocols and problems of one library folder, keyed by (file name, blob SHA)."""

    def __init__(self, folder: Path) -> None:
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
        self.path = data_home() / "cache" / f"library-{digest}.pickle"
        self.entries: dict[tuple[str, str], Any] = self._read()
        self.used: set[tuple[str, str]] = set()
        self.changed = False

    def _read(self) -> dict[tuple[str, str], Any]:
        try:
            with self.path.open("rb") as handle:
                data = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return {}
        return data.get("entries", {})

    def get(self, name: str, blob: str) -> Any | None:
        key = (name, blob)
        if key in self.entries:
            self.used.add(key)
            return self.entries[key]
        return None

    def put(self, name: str, blob: str, value: Any) -> None:
        self.entries[(name, blob)] = value
        self.used.add((name, blob))
        self.changed = True

    def save(self) -> None:
        """Write the entries used by this load, atomically; a failure only costs speed next time."""
        if not self.changed and len(self.used) == len(self.entries):
            return
        kept = {key: self.entries[key] for key in self.used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                pickle.dump({"format": CACHE_FORMAT, "entries": kept}, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
        except OSError:
            return
