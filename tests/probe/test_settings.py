"""The probe settings file: shipped defaults, round trip, and invalid files."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.calibration import Config, build_report, load_saved_outcomes, merge_outcomes, saved_configs
from probe.cases import load_items
from probe.errors import SettingsError
from probe.settings import DEFAULT_LAYER, DEFAULT_STRENGTH, DEFAULT_VECTOR_KIND, ProbeSettings, load_settings, save_settings, settings_path
from router.library import load_library
from tests.conftest import REPO, STARTER


def test_defaults_without_file(data_home: Path) -> None:
    settings = load_settings()
    assert settings_path() == data_home / "probe-settings.json"
    assert settings.layer == DEFAULT_LAYER
    assert settings.strength == DEFAULT_STRENGTH
    assert settings.source == "shipped default"


def test_round_trip(data_home: Path) -> None:
    written = save_settings(ProbeSettings(layer=10, strength=0.35, source="test run"))
    assert written == settings_path()
    assert load_settings() == ProbeSettings(layer=10, strength=0.35, source="test run")


@pytest.mark.parametrize(
    "content",
    ['{"layer": 10, "strength": 0.35, "colour": "red"}', '{"strength": -1}', "not json"],
    ids=["unknown-key", "negative-strength", "not-json"],
)
def test_invalid_file_rejected_with_fix(data_home: Path, content: str) -> None:
    settings_path().write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match="protocol calibrate") as raised:
        load_settings()
    assert "\n" not in str(raised.value)
    assert "https://" not in str(raised.value)


def test_invalid_value_named_in_one_line(data_home: Path) -> None:
    settings_path().write_text('{"strength": -1}', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\(strength: Input should be greater than or equal to 0\)"):
        load_settings()


def test_shipped_default_matches_calibration() -> None:
    library = load_library(STARTER)
    items = load_items(REPO / "tests" / "cases" / "probe-calibration.jsonl", library)
    runs = [load_saved_outcomes(path, items, library) for path in sorted((REPO / "benchmarks" / "probe-runs").glob("*.jsonl"))]
    outcomes, _ = merge_outcomes(runs)

    report = build_report(outcomes, saved_configs(outcomes))

    assert report.chosen is not None
    assert report.meets_target
    assert report.chosen.config == Config(DEFAULT_VECTOR_KIND, DEFAULT_LAYER, DEFAULT_STRENGTH)
    assert (report.chosen.sensitivity.hits, report.chosen.sensitivity.total) == (27, 69)
    assert (report.chosen.false_positive_rate.hits, report.chosen.false_positive_rate.total) == (7, 47)
