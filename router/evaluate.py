"""Run a labelled case file through the router and measure routing quality."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from router.choice import ChatModel
from router.errors import RouterError
from router.library import Library
from router.parsing import to_plain
from router.routing import RouteIndex
from router.service import cut_query, route_and_choose


class CaseFileError(RouterError):
    """A case file that cannot be read or contains an invalid case."""


class Case(BaseModel):
    """One labelled query: the protocols it must reach and those it must never reach."""

    model_config = ConfigDict(extra="forbid")

    id: str
    query: str
    expected: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    ambiguous: bool = False  # the router must list candidates and ask, not choose
    note: str | None = None


@dataclass
class CaseResult:
    """The router's result for one case and whether it passed."""

    case: Case
    chosen: list[str]
    ambiguous: bool
    source: str
    fallback: bool = False  # the model's reply was unusable and the rule result was used

    @property
    def exact(self) -> bool:
        if self.case.ambiguous:
            return self.ambiguous
        return not self.ambiguous and set(self.chosen) == set(self.case.expected)

    @property
    def top1(self) -> bool:
        if self.case.ambiguous:
            return self.ambiguous
        if not self.case.expected:
            return not self.chosen and not self.ambiguous
        return bool(self.chosen) and self.chosen[0] in self.case.expected

    @property
    def violations(self) -> list[str]:
        return [protocol_id for protocol_id in self.chosen if protocol_id in self.case.forbidden]

    @property
    def passed(self) -> bool:
        return self.exact and not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "query": self.case.query,
            "expected": self.case.expected,
            "forbidden": self.case.forbidden,
            "tags": self.case.tags,
            "chosen": self.chosen,
            "ambiguous": self.ambiguous,
            "source": self.source,
            "fallback": self.fallback,
            "passed": self.passed,
            "violations": self.violations,
        }


@dataclass
class EvalReport:
    """Per-case results and the totals computed from them."""

    results: list[CaseResult]
    totals: dict[str, Any] = field(default_factory=dict)
    per_tag: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_cases(path: Path, library: Library | None = None) -> list[Case]:
    """Read cases from JSONL or YAML; every invalid line or unknown protocol id is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CaseFileError(f"cannot read case file {path}: {error}") from None

    raw_cases = read_jsonl(text, path) if path.suffix == ".jsonl" else read_yaml(text, path)
    cases = []
    for number, data in raw_cases:
        try:
            cases.append(Case.model_validate(data))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise CaseFileError(f"{path}:{number}: invalid case ({where}: {first['msg']})") from None

    check_cases(cases, path, library)
    return cases


def read_jsonl(text: str, path: Path) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise CaseFileError(f"{path}:{number}: invalid JSON ({error.msg})") from None
    return rows


def read_yaml(text: str, path: Path) -> list[tuple[int, Any]]:
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as error:
        raise CaseFileError(f"{path}: invalid YAML ({error})") from None
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise CaseFileError(f"{path}: expected a list of cases (or a mapping with 'cases')")
    return [(getattr(item, "lc", None) and item.lc.line + 1 or index + 1, to_plain(item)) for index, item in enumerate(data)]


def check_cases(cases: list[Case], path: Path, library: Library | None) -> None:
    """Reject duplicate case ids and ids of protocols that the library does not have."""
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseFileError(f"{path}: duplicate case id {case.id!r}")
        seen.add(case.id)
        if library is None:
            continue
        unknown = [item for item in (*case.expected, *case.forbidden) if item not in library.protocols]
        if unknown:
            raise CaseFileError(f"{path}: case {case.id!r} names unknown protocol ids {unknown}")


def evaluate(
    cases: list[Case],
    library: Library,
    index: RouteIndex,
    model: ChatModel | None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> EvalReport:
    """Route every case (with the model, or rules only when model is None) and total the results."""
    results = []
    for case in cases:
        decision, choice = route_and_choose(cut_query(case.query).text, library, index, model)
        result = CaseResult(
            case=case,
            chosen=choice.ids,
            ambiguous=decision.ambiguous,
            source=choice.source,
            fallback=choice.source == "rules" and choice.notice is not None,
        )
        results.append(result)
        if on_case:
            on_case(result)
    return EvalReport(results=results, totals=totals(results), per_tag=per_tag(results))


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def totals(results: list[CaseResult]) -> dict[str, Any]:
    """Compute exact-set and top-1 accuracy, recall, no-match precision and recall, violations."""
    expected_total = sum(len(result.case.expected) for result in results if not result.case.ambiguous)
    expected_found = sum(
        len(set(result.chosen) & set(result.case.expected)) for result in results if not result.case.ambiguous
    )
    predicted_none = [result for result in results if not result.chosen and not result.ambiguous]
    actual_none = [result for result in results if not result.case.expected and not result.case.ambiguous]
    return {
        "cases": len(results),
        "passed": sum(result.passed for result in results),
        "exact_accuracy": ratio(sum(result.exact for result in results), len(results)),
        "top1_accuracy": ratio(sum(result.top1 for result in results), len(results)),
        "expected_recall": ratio(expected_found, expected_total),
        "no_match_precision": ratio(sum(not result.case.expected for result in predicted_none), len(predicted_none)),
        "no_match_recall": ratio(sum(not result.chosen and not result.ambiguous for result in actual_none), len(actual_none)),
        "forbidden_violations": sum(bool(result.violations) for result in results),
        "model_fallbacks": sum(result.fallback for result in results),
    }


def per_tag(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        for tag in result.case.tags or ["untagged"]:
            groups[tag].append(result)
    return {
        tag: {
            "cases": len(group),
            "passed": sum(result.passed for result in group),
            "exact_accuracy": ratio(sum(result.exact for result in group), len(group)),
        }
        for tag, group in sorted(groups.items())
    }
