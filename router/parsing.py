"""Parse one protocol file into a Protocol, reporting every problem with its line number."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from router.errors import Problem
from router.protocol import REQUIRED_SECTIONS, FrontMatter, KeyAction, Protocol

FENCE = "---"
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tabs are reported separately
SECTION = re.compile(r"^##\s+(?P<name>.+?)\s*$")
ACTION = re.compile(r"^(?P<number>\d+)\.\s+(?P<text>\S.*)$")
ACTION_FIELD = re.compile(r"^\s+[-*]\s+(?P<key>drug|dose|route|timing):\s*(?P<value>.+?)\s*$")
DATE_LINE = re.compile(r"^\s*(?P<key>[A-Za-z_]+):\s*[\"']?(?P<date>\d{4}-\d{2}-\d{2})[\"']?\s*(?:#.*)?$")
# The fix that each kind of pydantic error needs, by the start of its error type.
TYPE_FIXES = {
    "date": "write the date as YYYY-MM-DD",
    "list": "write a YAML list, such as [first, second] or one '- item' per line",
    "dict": "write a YAML mapping of keys to values",
    "string_type": "write text, in quotes if it could be read as a number, date or yes/no",
    "url": "write a full address that starts with https://",
}


class ParseFailed(Exception):
    """Raised inside this module to stop at the first problem that blocks further parsing."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def make_yaml() -> YAML:
    """Return a round-trip YAML reader that keeps quotes and never re-wraps long lines."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.allow_duplicate_keys = False
    return yaml


def parse_protocol(path: Path, text: str, label: str | None = None) -> tuple[Protocol | None, list[Problem]]:
    """Parse protocol text read from `path`; return the protocol (or None) and every problem found."""
    label = label or str(path)
    text = text.removeprefix("\ufeff")  # a byte-order mark written by some editors
    control = CONTROL_CHARACTER.search(text)
    if control:
        line = text[: control.start()].count("\n") + 1
        return None, [Problem(label, line, f"control character U+{ord(control.group()):04X} in the file: remove it")]
    try:
        front, body, body_line = split_front_matter(text, label)
        data = read_front_matter(front, label)
        meta, problems = validate_front_matter(data, label)
        sections, section_problems = read_sections(body, body_line, label)
    except ParseFailed as failure:
        return None, failure.problems

    problems += section_problems
    if meta is None or problems and any(p.severity == "error" for p in problems):
        return None, problems

    key_actions = parse_key_actions(sections["Key actions"][1], sections["Key actions"][0], label, problems)
    if any(p.severity == "error" for p in problems):
        return None, problems

    protocol = Protocol(
        meta=meta,
        body=body.strip("\n"),
        key_actions=key_actions,
        key_actions_text=sections["Key actions"][1].strip("\n"),
        contraindications_text=sections["Contraindications"][1].strip("\n"),
        path=str(path),
        key_lines={str(key): data.lc.key(key)[0] + 2 for key in data},
    )
    return protocol, problems


def split_front_matter(text: str, label: str) -> tuple[str, str, int]:
    """Split text into front matter and body; also return the body's first line number."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != FENCE:
        raise ParseFailed([Problem(label, 1, "missing front matter: the file must start with a '---' line")])

    for index in range(1, len(lines)):
        if lines[index].strip() == FENCE:
            front = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :])
            return front, body, index + 2

    raise ParseFailed([Problem(label, 1, "front matter is not closed: add a '---' line after the YAML header")])


def read_front_matter(front: str, label: str) -> dict[str, Any]:
    """Load the YAML header; tabs, duplicate keys and syntax errors become problems with lines."""
    tabs = [
        Problem(label, number + 2, "tab character in the front matter: indent YAML with spaces")
        for number, line in enumerate(front.split("\n"))
        if "\t" in line
    ]
    if tabs:
        raise ParseFailed(tabs)

    try:
        data = make_yaml().load(io.StringIO(front))
    except DuplicateKeyError as error:
        raise ParseFailed([duplicate_key_problem(error, front, label)]) from None
    except MarkedYAMLError as error:
        line = (error.problem_mark.line + 2) if error.problem_mark else 1
        reason = error.problem or "invalid YAML"
        fix = "check the brackets, quotes and indentation on that line, and quote a value that contains ': '"
        raise ParseFailed([Problem(label, line, f"invalid YAML: {reason}: {fix}")]) from None
    except (YAMLError, ValueError) as error:
        # ruamel raises ValueError for impossible dates such as 2027-02-30.
        raise ParseFailed([impossible_date_problem(front, label) or Problem(label, 2, f"invalid YAML value: {error}")]) from None

    if not isinstance(data, CommentedMap):
        raise ParseFailed([Problem(label, 2, "the front matter must be a YAML mapping of keys to values")])
    return data


def impossible_date_problem(front: str, label: str) -> Problem | None:
    """Find the first date-shaped value that is not a real date, such as 2026-13-45, and describe it."""
    for number, line in enumerate(front.split("\n")):
        found = DATE_LINE.match(line)
        if not found:
            continue
        try:
            dt.date.fromisoformat(found.group('date'))
        except ValueError:
            return Problem(label, number + 2, f"invalid date {found.group('date')!r} for {found.group('key')}: use a real date as YYYY-MM-DD")
    return None


def duplicate_key_problem(error: DuplicateKeyError, front: str, label: str) -> Problem:
    """Describe a duplicate key with both of its line numbers (file lines, counting the fence)."""
    second = error.problem_mark.line if error.problem_mark else 0
    key = re.search(r'"([^"]+)"', str(error.problem))
    name = key.group(1) if key else "a key"
    lines = front.split("\n")
    repeated = lines[second] if second < len(lines) else ""
    prefix = repeated[: len(repeated) - len(repeated.lstrip())] + f"{name}:"
    earlier = [number for number in range(second) if lines[number].startswith(prefix)]
    first = earlier[-1] if earlier else second
    return Problem(label, second + 2, f"duplicate key {name!r} (also on line {first + 2}): keep only one")


def validate_front_matter(data: CommentedMap, label: str) -> tuple[FrontMatter | None, list[Problem]]:
    """Validate the header with pydantic; map each error to the line of the offending key."""
    try:
        return FrontMatter.model_validate(to_plain(data)), []
    except ValidationError as error:
        problems = [
            Problem(label, line_of(data, issue["loc"]), describe_issue(issue))
            for issue in error.errors()
        ]
        return None, problems


def to_plain(node: Any) -> Any:
    """Convert ruamel's round-trip containers and scalars to plain Python values."""
    if isinstance(node, CommentedMap):
        return {str(key): to_plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [to_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node


def line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """Return the file line of the deepest key in `loc` that the YAML data still contains."""
    line = 2
    node = data
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 2
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 2
            node = node[part]
        else:
            break
    return line


def describe_issue(issue: dict[str, Any]) -> str:
    """Turn one pydantic error into a sentence that names the key and the fix."""
    where = ".".join(str(part) for part in issue["loc"]) or "front matter"
    kind = issue["type"]
    if kind == "missing":
        return f"missing required key {where!r}: add it to the front matter"
    if kind == "extra_forbidden":
        return f"unknown key {where!r}: remove it or correct its spelling"
    message = str(issue["msg"]).removeprefix("Value error, ")
    fix = next((text for prefix, text in TYPE_FIXES.items() if kind.startswith(prefix)), None)
    return f"invalid {where}: {message}: {fix}" if fix else f"invalid {where}: {message}"


def read_sections(body: str, first_line: int, label: str) -> tuple[dict[str, tuple[int, str]], list[Problem]]:
    """Split the Markdown body at `## ` headings; return {name: (line, text)} and problems."""
    sections: dict[str, tuple[int, str]] = {}
    current: str | None = None
    collected: list[str] = []
    start = first_line
    problems: list[Problem] = []

    def close() -> None:
        if current is not None:
            sections[current] = (start, "\n".join(collected))

    for offset, line in enumerate(body.split("\n")):
        heading = SECTION.match(line)
        if not heading:
            collected.append(line)
            continue
        close()
        current = heading.group("name")
        if current in sections:
            problems.append(Problem(label, first_line + offset, f"duplicate section '## {current}': merge them"))
        collected = []
        start = first_line + offset + 1
    close()

    for name in REQUIRED_SECTIONS:
        if name not in sections:
            problems.append(Problem(label, first_line, f"missing section '## {name}': add it to the body"))
    return sections, problems


def parse_key_actions(text: str, first_line: int, label: str, problems: list[Problem]) -> list[KeyAction]:
    """Parse the numbered list of key actions with their drug, dose, route and timing lines."""
    actions: list[dict[str, Any]] = []
    for offset, line in enumerate(text.split("\n")):
        number = first_line + offset
        item = ACTION.match(line)
        field = ACTION_FIELD.match(line)
        if item:
            actions.append({"number": int(item.group("number")), "text": item.group("text"), "line": number})
        elif field and actions:
            key = field.group("key")
            if key in actions[-1]:
                problems.append(Problem(label, number, f"key action {actions[-1]['number']} has a second '{key}:' line: keep one"))
            actions[-1][key] = field.group("value")

    if not actions:
        problems.append(Problem(label, first_line, "'## Key actions' has no numbered items: write '1. ...'"))
    for position, action in enumerate(actions, start=1):
        if action["number"] != position:
            problems.append(Problem(label, action["line"], f"key action numbered {action['number']}, expected {position}"))
        if action.get("drug"):
            missing = [key for key in ("dose", "route", "timing") if not action.get(key)]
            if missing:
                problems.append(Problem(label, action["line"], f"key action with a drug lacks {', '.join(missing)}: add '- {missing[0]}: ...'"))

    return [KeyAction(**{key: value for key, value in action.items() if key != "line"}) for action in actions]
