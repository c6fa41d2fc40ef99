"""The labelled calibration set: one query per line, with what a right baseline answer contains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from probe.errors import CalibrationFileError
from probe.meaning import AnswerReading, TermTable, read_answer
from router.answer import DOSE, dose_key
from router.library import Library

Task = Literal["choose", "answer", "bare"]


class CalibrationItem(BaseModel):
    """One labelled query and the step it exercises.

    "choose" runs the routing choice prompt over the router's candidates and is right when the
    chosen ids equal `expected_ids`. "answer" puts the `context` protocols in the answer prompt,
    and "bare" sends the query with no protocol in context. Both are right when, of the `expected_key` and
    `avoid_key` terms, an expected one comes first, and when the first dose is one of
    `expected_dose` if that is given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    task: Task
    query: str = Field(min_length=1)
    expected_ids: list[str] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    expected_key: list[str] = Field(default_factory=list)
    avoid_key: list[str] = Field(default_factory=list)
    expected_dose: list[str] = Field(default_factory=list)  # doses such as "2.5 mg/kg", compared without spaces
    tags: list[str] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _labels_fit_task(self) -> CalibrationItem:
        if self.task == "answer" and not self.context:
            raise ValueError("an 'answer' item needs the protocol ids to put in context")
        if self.task != "choose" and not (self.expected_key or self.expected_dose):
            raise ValueError(f"a {self.task!r} item needs expected_key or expected_dose")
        return self

    def is_right(self, chosen: tuple[str, ...] | None, reading: AnswerReading | None) -> bool:
        """Score a baseline reply against the labels."""
        if self.task == "choose":
            return chosen is not None and set(chosen) == set(self.expected_ids)
        if reading is None:
            return False
        return self.key_is_right(reading) and self.dose_is_right(reading)

    def key_is_right(self, reading: AnswerReading) -> bool:
        if not self.expected_key:
            return True
        labelled = [term for term in reading.terms if term in self.expected_key or term in self.avoid_key]
        return bool(labelled) and labelled[0] in self.expected_key

    def dose_is_right(self, reading: AnswerReading) -> bool:
        if not self.expected_dose:
            return True
        return reading.first_dose in {normal_dose(dose) for dose in self.expected_dose}


def normal_dose(text: str) -> str:
    match = DOSE.search(text)
    if match is None:
        raise ValueError(f"{text!r} is not a dose with a unit, such as '2.5 mg/kg'")
    return dose_key(match.group(1), match.group(2))


def load_items(path: Path, library: Library) -> list[CalibrationItem]:
    """Read a JSONL calibration file; an invalid line, unknown id or unknown term is an error."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CalibrationFileError(f"cannot read calibration file {path}: {error}") from None

    table = TermTable.for_library(library)
    items: list[CalibrationItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = parse_line(path, number, line)
        check_item(path, number, item, library, table)
        if item.id in seen:
            raise CalibrationFileError(f"{path}:{number}: duplicate id {item.id!r}: give each item its own id")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise CalibrationFileError(f"calibration file {path} contains no items: write one JSON object per line")
    return items


def parse_line(path: Path, number: int, line: str) -> CalibrationItem:
    try:
        return CalibrationItem.model_validate(json.loads(line))
    except json.JSONDecodeError as error:
        raise CalibrationFileError(f"{path}:{number}: invalid JSON ({error.msg})") from None
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in error.errors())
        raise CalibrationFileError(f"{path}:{number}: invalid item: {details}") from None


def check_item(path: Path, number: int, item: CalibrationItem, library: Library, table: TermTable) -> None:
    """Check that the item's protocol ids, terms and doses are ones the probe can recognise."""
    unknown_ids = [pid for pid in (*item.expected_ids, *item.context) if pid not in library.protocols]
    if unknown_ids:
        known = ", ".join(sorted(library.protocols))
        raise CalibrationFileError(f"{path}:{number}: item {item.id} names unknown protocol ids {unknown_ids}; known ids: {known}")
    unknown_terms = [term for term in (*item.expected_key, *item.avoid_key) if term not in table.terms]
    if unknown_terms:
        raise CalibrationFileError(
            f"{path}:{number}: item {item.id} names terms the probe cannot read: {unknown_terms}; "
            f"known terms: {', '.join(sorted(table.terms))}"
        )
    for dose in item.expected_dose:
        try:
            normal_dose(dose)
        except ValueError as error:
            raise CalibrationFileError(f"{path}:{number}: item {item.id}: {error}") from None


def score_answer(item: CalibrationItem, text: str, table: TermTable) -> bool:
    return item.is_right(None, read_answer(text, table))
