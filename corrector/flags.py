"""Flag text in feedback and proposals that reads as an instruction to a model, or adds unverified doses.

A proposal's text ends up in the model's context whenever its protocol is cited, so a line such as
"ignore previous instructions" would be a prompt injection that outlives the review. Flags never
block anything: review prints them next to the text, and the text itself is printed verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.answer import DOSE, dose_key

INSTRUCTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        ("asks to ignore earlier instructions", r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|system|your)\b.{0,20}\b(instructions?|prompts?|rules?|guidelines?)"),
        ("addresses the model's role", r"\byou are (now|no longer)\b|\bact as\b|\bpretend (to be|you are)\b|\bfrom now on\b"),
        ("mentions the system prompt", r"\bsystem prompt\b|\bdeveloper (message|mode)\b|\bjailbreak\b"),
        ("contains a chat-template token", r"<\|[^|>]{0,40}\|>|\[/?INST\]|</?s>|^\s*(system|assistant|user)\s*:"),
        ("tells the reader to hide or skip something", r"\bdo not (tell|mention|reveal|cite|warn)\b|\bwithout (telling|warning)\b"),
    )
)


@dataclass(frozen=True)
class Flag:
    """One suspicious line: where it is, why it was flagged, and the line itself."""

    where: str
    reason: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason, "text": self.text}

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.text!r}"


def instruction_flags(text: str, where: str) -> list[Flag]:
    """Return a flag for each line of `text` that reads like an instruction to a model."""
    flags = []
    for number, line in enumerate(text.splitlines(), start=1):
        for reason, pattern in INSTRUCTION_PATTERNS:
            if pattern.search(line):
                flags.append(Flag(f"{where}, line {number}", reason, line.strip()))
                break
    return flags


def added_lines(diff: str) -> dict[str, list[str]]:
    """Map each file of a unified diff to the lines that it adds."""
    added: dict[str, list[str]] = {}
    current = "?"
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[4:].removeprefix("b/")
            added.setdefault(current, [])
        elif line.startswith("+") and not line.startswith("+++"):
            added.setdefault(current, []).append(line[1:])
    return added


def diff_flags(diff: str, feedback_comment: str) -> list[Flag]:
    """Flag instruction-like lines and new doses in the added lines of a proposal's diff.

    A dose counts as new when neither the removed lines of the diff nor the feedback comment
    contains it, since a drafted edit must not invent a dose.
    """
    removed = "\n".join(line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    known = {dose_key(match.group(1), match.group(2)) for match in DOSE.finditer(removed + "\n" + feedback_comment)}
    flags: list[Flag] = []
    for path, lines in added_lines(diff).items():
        text = "\n".join(lines)
        flags.extend(instruction_flags(text, f"added lines of {path}"))
        for match in DOSE.finditer(text):
            if dose_key(match.group(1), match.group(2)) not in known:
                flags.append(Flag(f"added lines of {path}", "a dose that the old text and the feedback do not contain", match.group(0).strip()))
    return flags
