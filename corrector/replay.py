"""Replay evaluation cases against the current and the proposed library and compare the results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from router.choice import ChatModel
from router.evaluate import Case, CaseResult, evaluate, load_cases
from router.library import Library
from router.routing import RouteIndex

from corrector.errors import CorrectorError

DEFAULT_CASES = Path("tests") / "cases" / "router-dev.jsonl"
CaseOrigin = Literal["cases file", "example query", "feedback"]
Change = Literal["fixed", "broken", "unchanged"]


@dataclass
class ReplayCases:
    """The cases to replay: those of a case file (if any) and the feedback's own case."""

    file_cases: list[Case]
    cases_file: str | None
    cases_digest: str | None  # SHA-256 of the case file, so a stored replay is reused only for the same file
    feedback_case: Case | None = None


def find_cases(cases_file: Path | None, repo_root: Path) -> ReplayCases:
    """Load the case file given, else tests/cases/router-dev.jsonl in the repository when it exists."""
    path = cases_file or repo_root / DEFAULT_CASES
    if cases_file is None and not path.exists():
        return ReplayCases([], None, None)
    cases = load_cases(path)  # ids are not checked: the proposed library may add protocols
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ReplayCases(cases, str(path), digest)


@dataclass
class ReplayCase:
    """One case routed with both libraries."""

    id: str
    query: str
    origin: CaseOrigin
    expected: list[str]
    ambiguous_expected: bool
    before: list[str]
    after: list[str]
    before_ambiguous: bool
    after_ambiguous: bool
    before_passed: bool
    after_passed: bool

    @property
    def change(self) -> Change:
        if self.before_passed == self.after_passed:
            return "unchanged"
        return "fixed" if self.after_passed else "broken"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "query": self.query, "origin": self.origin, "expected": self.expected,
            "ambiguous_expected": self.ambiguous_expected, "before": self.before, "after": self.after,
            "before_ambiguous": self.before_ambiguous, "after_ambiguous": self.after_ambiguous,
            "before_passed": self.before_passed, "after_passed": self.after_passed, "change": self.change,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplayCase:
        return cls(**{key: value for key, value in data.items() if key != "change"})


@dataclass
class ReplayResult:
    """Every replayed case with its change, the totals before and after, and what was compared."""

    current: str  # commit of the current library
    proposed: str  # commit or tree of the proposed library
    with_model: bool
    cases_file: str | None
    cases_digest: str | None
    cases: list[ReplayCase] = field(default_factory=list)
    totals_before: dict[str, Any] = field(default_factory=dict)
    totals_after: dict[str, Any] = field(default_factory=dict)

    def with_change(self, change: Change) -> list[ReplayCase]:
        return [case for case in self.cases if case.change == change]

    @property
    def fixed(self) -> list[ReplayCase]:
        return self.with_change("fixed")

    @property
    def broken(self) -> list[ReplayCase]:
        return self.with_change("broken")

    def matches(self, current: str, proposed: str, with_model: bool, cases: ReplayCases) -> bool:
        """Return whether this result was computed for the same inputs, so it can be shown again."""
        return (self.current, self.proposed, self.with_model, self.cases_file, self.cases_digest) == (
            current, proposed, with_model, cases.cases_file, cases.cases_digest,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "proposed": self.proposed,
            "with_model": self.with_model,
            "cases_file": self.cases_file,
            "cases_digest": self.cases_digest,
            "counts": {change: len(self.with_change(change)) for change in ("fixed", "broken", "unchanged")},
            "totals_before": self.totals_before,
            "totals_after": self.totals_after,
            "cases": [case.to_json() for case in self.cases],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplayResult:
        return cls(
            current=data["current"], proposed=data["proposed"], with_model=data["with_model"],
            cases_file=data["cases_file"], cases_digest=data["cases_digest"],
            cases=[ReplayCase.from_json(item) for item in data["cases"]],
            totals_before=data["totals_before"], totals_after=data["totals_after"],
        )


def example_cases(libraries: list[Library]) -> list[Case]:
    """Turn each protocol's example_queries into cases that expect exactly that protocol."""
    cases: dict[str, Case] = {}
    for library in libraries:
        for protocol in sorted(library.protocols.values(), key=lambda item: item.id):
            for number, query in enumerate(protocol.meta.example_queries, start=1):
                case_id = f"example:{protocol.id}:{number}"
                cases.setdefault(case_id, Case(id=case_id, query=query, expected=[protocol.id], tags=["example"]))
    return list(cases.values())


def all_cases(replay_cases: ReplayCases, before: Library, after: Library) -> list[tuple[Case, CaseOrigin]]:
    """Return every case to replay, each with where it came from; case ids are unique."""
    chosen: dict[str, tuple[Case, CaseOrigin]] = {}
    for case in replay_cases.file_cases:
        chosen[case.id] = (case, "cases file")
    for case in example_cases([before, after]):
        chosen.setdefault(case.id, (case, "example query"))
    if replay_cases.feedback_case is not None:
        chosen[replay_cases.feedback_case.id] = (replay_cases.feedback_case, "feedback")
    return list(chosen.values())


def replay(
    before: Library,
    after: Library,
    replay_cases: ReplayCases,
    model: ChatModel | None,
    current: str,
    proposed: str,
) -> ReplayResult:
    """Route every case with both libraries (rules only when model is None) and compare pass/fail."""
    cases = all_cases(replay_cases, before, after)
    if not cases:
        raise CorrectorError("there is nothing to replay: no case file, no example_queries and no feedback case")
    plain = [case for case, _ in cases]
    report_before = evaluate(plain, before, RouteIndex(before), model)
    report_after = evaluate(plain, after, RouteIndex(after), model)

    result = ReplayResult(
        current=current, proposed=proposed, with_model=model is not None,
        cases_file=replay_cases.cases_file, cases_digest=replay_cases.cases_digest,
        totals_before=report_before.totals, totals_after=report_after.totals,
    )
    for (case, origin), old, new in zip(cases, report_before.results, report_after.results, strict=True):
        result.cases.append(compare(case, origin, old, new))
    return result


def compare(case: Case, origin: CaseOrigin, old: CaseResult, new: CaseResult) -> ReplayCase:
    return ReplayCase(
        id=case.id, query=case.query, origin=origin, expected=case.expected, ambiguous_expected=case.ambiguous,
        before=old.chosen, after=new.chosen, before_ambiguous=old.ambiguous, after_ambiguous=new.ambiguous,
        before_passed=old.passed, after_passed=new.passed,
    )
