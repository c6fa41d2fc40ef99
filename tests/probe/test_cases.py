"""The labelled calibration file: loading, validation and scoring of baseline replies."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from probe.cases import CalibrationItem, load_items
from probe.errors import CalibrationFileError
from probe.meaning import TermTable, read_answer
from router.library import load_library
from tests.conftest import REPO, STARTER

SHIPPED = REPO / "tests" / "cases" / "probe-calibration.jsonl"


@pytest.fixture(scope="module")
def library():  # type: ignore[no-untyped-def]
    return load_library(STARTER)


def write_items(path: Path, *items: dict[str, object]) -> Path:
    path.write_text("\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8")
    return path


def test_shipped_set_has_enough_items_of_each_task(library) -> None:  # type: ignore[no-untyped-def]
    items = load_items(SHIPPED, library)
    tasks = Counter(item.task for item in items)
    tags = Counter(tag for item in items for tag in item.tags)
    assert len(items) >= 100
    assert tasks["bare"] >= 30
    assert tasks["choose"] >= 30
    assert tasks["answer"] >= 20
    assert tags["look-alike"] >= 30
    assert tags["dose"] >= 10
    assert tags["ordering"] >= 10


def test_load_items_rejects_unknown_protocol(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    path = write_items(tmp_path / "cases.jsonl", {"id": "x", "task": "choose", "query": "q", "expected_ids": ["no-such-protocol"]})
    with pytest.raises(CalibrationFileError, match="unknown protocol ids"):
        load_items(path, library)


def test_load_items_rejects_unknown_term(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    path = write_items(tmp_path / "cases.jsonl", {"id": "x", "task": "bare", "query": "q", "expected_key": ["unobtainium"]})
    with pytest.raises(CalibrationFileError, match="cannot read: \\['unobtainium'\\]"):
        load_items(path, library)


def test_load_items_rejects_invalid_json_with_line(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "task": "bare", "query": "q", "expected_key": ["dantrolene"]}\n{oops\n', encoding="utf-8")
    with pytest.raises(CalibrationFileError, match="cases.jsonl:2: invalid JSON"):
        load_items(path, library)


def test_load_items_rejects_answer_without_context(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    path = write_items(tmp_path / "cases.jsonl", {"id": "x", "task": "answer", "query": "q", "expected_key": ["dantrolene"]})
    with pytest.raises(CalibrationFileError, match="needs the protocol ids"):
        load_items(path, library)


def test_load_items_rejects_duplicate_id(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    item = {"id": "x", "task": "bare", "query": "q", "expected_key": ["dantrolene"]}
    with pytest.raises(CalibrationFileError, match="duplicate id"):
        load_items(write_items(tmp_path / "cases.jsonl", item, item), library)


def test_load_items_rejects_empty_file(tmp_path: Path, library) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n# only a comment\n", encoding="utf-8")
    with pytest.raises(CalibrationFileError, match="contains no items"):
        load_items(path, library)


def test_choose_item_scored_on_exact_set() -> None:
    item = CalibrationItem(id="c", task="choose", query="q", expected_ids=["heat-stroke"])
    assert item.is_right(("heat-stroke",), None)
    assert not item.is_right(("heat-stroke", "malignant-hyperthermia"), None)
    assert not item.is_right((), None)


def test_answer_item_scored_on_first_labelled_term(library) -> None:  # type: ignore[no-untyped-def]
    table = TermTable.for_library(library)
    item = CalibrationItem(id="b", task="bare", query="q", expected_key=["cooling"], avoid_key=["dantrolene"])
    assert item.is_right(None, read_answer("Stop exercise, then cold-water immersion; dantrolene is not useful.", table))
    assert not item.is_right(None, read_answer("Dantrolene first, then cooling.", table))
    assert not item.is_right(None, read_answer("Supportive care.", table))


def test_dose_item_needs_expected_first_dose(library) -> None:  # type: ignore[no-untyped-def]
    table = TermTable.for_library(library)
    item = CalibrationItem(id="d", task="bare", query="q", expected_key=["dantrolene"], expected_dose=["2.5 mg/kg", "200 mg"])
    assert item.is_right(None, read_answer("Dantrolene 2.5 mg/kg IV.", table))
    assert item.is_right(None, read_answer("Dantrolene 200 mg for 80 kg.", table))
    assert not item.is_right(None, read_answer("Dantrolene 1 mg/kg IV.", table))
