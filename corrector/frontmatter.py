"""Edit a protocol file's YAML front matter so that the git diff shows only the keys that changed.

ruamel's round trip does not reproduce every file byte for byte ('approved_by: null' comes back as
'approved_by:', indentation is one setting per dump). So only the keys whose value changed are
dumped again, and their lines are spliced into the original text; every other line stays as written.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from router.parsing import make_yaml

from corrector.errors import ProposalError

# (mapping, sequence, offset) settings tried in turn; the one that reproduces a key's original lines wins.
INDENT_STYLES = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4))
VERSION_TAIL = re.compile(r"^(?P<head>.*?)(?P<number>\d+)$")


@dataclass
class ProtocolText:
    """A protocol file split at its front-matter fences, so that joining gives the same text back."""

    opening: str
    front: str
    closing: str
    body: str

    def join(self) -> str:
        return "\n".join([self.opening, self.front, self.closing, self.body])


def split_text(text: str) -> ProtocolText:
    """Split a protocol file into fences, front matter and body; raise ProposalError without fences."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        for index in range(1, len(lines)):
            if lines[index].strip() == "---":
                return ProtocolText(lines[0], "\n".join(lines[1:index]), lines[index], "\n".join(lines[index + 1 :]))
    raise ProposalError("the protocol file has no front matter between '---' lines: fix it with 'protocol check' first")


def load_front(front: str) -> CommentedMap:
    try:
        data = make_yaml().load(io.StringIO(front))
    except YAMLError as error:
        raise ProposalError(f"the front matter is not valid YAML ({error}): fix it with 'protocol check' first") from None
    if not isinstance(data, CommentedMap):
        raise ProposalError("the front matter is not a YAML mapping: fix it with 'protocol check' first")
    return data


def dump_key(key: str, value: Any, style: tuple[int, int, int]) -> list[str]:
    """Dump one top-level key with its value and return the lines."""
    yaml = make_yaml()
    mapping, sequence, offset = style
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    out = io.StringIO()
    yaml.dump({key: value}, out)
    return out.getvalue().rstrip("\n").split("\n")


def key_blocks(data: CommentedMap, line_count: int) -> dict[str, tuple[int, int]]:
    """Map each top-level key to its (first, end) line range in the front matter."""
    keys = list(data)
    starts = [data.lc.key(key)[0] for key in keys]
    ends = [*starts[1:], line_count]
    return {key: (start, end) for key, start, end in zip(keys, starts, ends, strict=True)}


def rewrite_block(key: str, old: Any, new: Any, original: list[str]) -> list[str]:
    """Return the new lines of one key, reusing original lines wherever the value did not change."""
    trimmed = list(original)
    while trimmed and not trimmed[-1].strip():
        trimmed.pop()
    trailing_blank = original[len(trimmed) :]

    def score(style: tuple[int, int, int]) -> int:
        dumped = dump_key(key, old, style)
        return sum(a == b for a, b in zip(dumped, trimmed, strict=False)) - abs(len(dumped) - len(trimmed))

    style = max(INDENT_STYLES, key=score)
    old_lines = dump_key(key, old, style)
    new_lines = dump_key(key, new, style)
    if len(old_lines) != len(trimmed):
        return new_lines + trailing_blank  # the original lines cannot be matched one to one

    result: list[str] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        result.extend(trimmed[a_start:a_end] if tag == "equal" else new_lines[b_start:b_end])
    return result + trailing_blank


def edit_front_matter(text: str, edit: Callable[[CommentedMap], None]) -> str:
    """Apply `edit` to the loaded front matter and return the file text with only changed keys rewritten.

    Keys that `edit` adds go after the key that precedes them in the edited mapping.
    """
    parts = split_text(text)
    before = load_front(parts.front)
    after = load_front(parts.front)
    edit(after)

    lines = parts.front.split("\n")
    blocks = key_blocks(before, len(lines))
    style = INDENT_STYLES[0]
    output: list[str] = []
    for key in before:
        start, end = blocks[key]
        if key not in after:
            continue
        if dump_key(key, before[key], style) == dump_key(key, after[key], style):
            output.extend(lines[start:end])
        else:
            output.extend(rewrite_block(key, before[key], after[key], lines[start:end]))
        output.extend(new_keys_after(key, before, after, style))
    leading = lines[: min((start for start, _ in blocks.values()), default=len(lines))]
    new_first = new_keys_after(None, before, after, style)

    parts.front = "\n".join([*leading, *new_first, *output])
    return parts.join()


def new_keys_after(key: str | None, before: CommentedMap, after: CommentedMap, style: tuple[int, int, int]) -> list[str]:
    """Dump the keys that `after` adds directly after `key` (None: before the first key)."""
    keys = list(after)
    position = keys.index(key) + 1 if key is not None and key in after else 0
    lines: list[str] = []
    for added in keys[position:]:
        if added in before:
            break
        lines.extend(dump_key(added, after[added], style))
    return lines


def bump_version(version: str) -> str:
    """Return the next minor version: "1.0" -> "1.1", "1.9" -> "1.10", "2" -> "2.1"."""
    if "." not in version and version.isdigit():
        return f"{version}.1"
    match = VERSION_TAIL.match(version)
    if not match:
        raise ProposalError(
            f"version {version!r} does not end in a number, so it cannot be bumped: set the version on the proposal branch by hand"
        )
    return f"{match.group('head')}{int(match.group('number')) + 1}"


def same_style(old: Any, value: str) -> Any:
    """Return `value` as the same ruamel scalar type as `old`, so its quotes are kept."""
    try:
        return type(old)(value) if isinstance(old, str) else value
    except TypeError:
        return value


def review_edit(today: dt.date, reviewer: str | None, bump: bool) -> Callable[[CommentedMap], None]:
    """Return the edit made on approval: version bump, last_reviewed today, approved_by the reviewer.

    When review_due would fall before the new last_reviewed date, it moves forward by the
    protocol's previous review interval, because the schema requires review_due >= last_reviewed.
    """

    def edit(data: CommentedMap) -> None:
        if bump and "version" in data:
            data["version"] = same_style(data["version"], bump_version(str(data["version"])))
        previous = data.get("last_reviewed")
        data["last_reviewed"] = today
        due = data.get("review_due")
        if isinstance(due, dt.date) and due < today:
            interval = due - previous if isinstance(previous, dt.date) and due > previous else dt.timedelta(days=365)
            data["review_due"] = today + interval
        if reviewer:
            if "approved_by" in data:
                data["approved_by"] = same_style(data["approved_by"], reviewer)
            else:
                data.insert(list(data).index("owner") + 1 if "owner" in data else len(data), "approved_by", reviewer)

    return edit
