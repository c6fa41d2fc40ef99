"""The `probe` and `calibrate` commands through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from probe.calibration import sweep_configs
from probe.errors import LayerRangeError
from probe.loading import LanguageModel
from probe.result import PerturbedRun, ProbeResult, StepResult
from probe.settings import ProbeSettings, load_settings, settings_path
from router.audit import AnswerRecord, get_record, save_record
from router.model import ModelInfo
from tests.conftest import protocol_text, write_library

runner = CliRunner()
QUERY = "Rising end-tidal CO2 and masseter spasm after sux"


def fake_result(flipped: bool) -> ProbeResult:
    changes = ("first drug or action: dantrolene -> cooling",) if flipped else ()
    run = PerturbedRun("answer", "contrast:a->b", "contrast", 14, 0.3, "Cool the patient.", {}, changes)
    step = StepResult(step="answer", baseline_text="Give dantrolene 2.5 mg/kg.", baseline={"first_key": "dantrolene"}, runs=[run])
    return ProbeResult(query=QUERY, probed=True, settings=ProbeSettings(), model_sha256="0" * 64, steps=[step])


@pytest.fixture
def fake_probe(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    calls: dict[str, object] = {"flipped": True}

    def probe_answer(query: str, library: object, **kwargs: object) -> ProbeResult:
        calls["query"] = query
        calls["kwargs"] = kwargs
        return fake_result(bool(calls["flipped"]))

    monkeypatch.setattr("probe.commands.probe_answer", probe_answer)
    return calls


def test_probe_unstable_prints_review_flag(fake_probe: dict[str, object]) -> None:
    result = runner.invoke(app, ["probe", QUERY])
    assert result.exit_code == 0, result.output
    assert "Probe: UNSTABLE - needs human review" in result.stdout
    assert "contrast:a->b (strength 0.3, layer 14): first drug or action: dantrolene -> cooling" in result.stdout
    assert "Baseline answer: Give dantrolene 2.5 mg/kg." in result.stdout
    assert fake_probe["query"] == QUERY


def test_probe_stable_says_not_correctness(fake_probe: dict[str, object]) -> None:
    fake_probe["flipped"] = False
    result = runner.invoke(app, ["probe", QUERY])
    assert result.exit_code == 0, result.output
    assert "STABLE - stable under perturbation; not a check of correctness" in result.stdout


def test_probe_json(fake_probe: dict[str, object]) -> None:
    result = runner.invoke(app, ["probe", QUERY, "--json", "--control"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stable"] is False
    assert data["baseline"] == {"answer": {"first_key": "dantrolene"}}
    assert data["steps"][0]["perturbed"][0]["changes"] == ["first drug or action: dantrolene -> cooling"]
    assert fake_probe["kwargs"]["with_control"] is True  # type: ignore[index]


def test_probe_stored_in_audit_record(fake_probe: dict[str, object]) -> None:
    record = AnswerRecord(
        query=QUERY, library_path="lib", library_commit=None, candidates=[], chosen=["malignant-hyperthermia"],
        choice_source="model", citations=[], model_path=None, model_sha256=None, answer="Give dantrolene.", no_match=False,
    )
    save_record(record)
    result = runner.invoke(app, ["probe", QUERY, "--answer-id", record.id])
    assert result.exit_code == 0, result.output
    stored = get_record(record.id).probe
    assert stored is not None
    assert stored["verdict"] == "UNSTABLE"
    assert stored["needs_review"] is True


def test_probe_error_exits_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise LayerRangeError("layer 40 is out of range: this model has 28 decoder layers, so use 0 to 27")

    monkeypatch.setattr("probe.commands.probe_answer", broken)
    result = runner.invoke(app, ["probe", QUERY])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: layer 40 is out of range: this model has 28 decoder layers, so use 0 to 27"
    assert result.stdout == ""


@pytest.fixture
def tiny_calibration(tmp_path: Path, tiny_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Prepare `calibrate` on the tiny model and a three-protocol library, with one item of each task."""
    info = ModelInfo(name="tiny", path=tmp_path / "tiny.gguf", source="--model", size=0, sha256=tiny_model.sha256)
    monkeypatch.setattr("probe.commands.resolve_model", lambda option: info)
    monkeypatch.setattr("probe.commands.load_language_model", lambda model_info: tiny_model)
    files = {
        "alpha.md": protocol_text("alpha", confusable_with="[beta]", aliases="[alpha syndrome]"),
        "beta.md": protocol_text("beta", confusable_with="[alpha]", keywords="\n  - any: [other finding]"),
        "gamma.md": protocol_text("gamma", keywords="\n  - any: [third finding]"),
    }
    monkeypatch.setenv("PROTOCOL_LIBRARY", str(write_library(tmp_path / "lib", files)))
    items = [
        {"id": "a", "task": "answer", "query": "Demo finding: dose?", "context": ["gamma"], "expected_key": ["demodrug"]},
        {"id": "b", "task": "bare", "query": "Alpha syndrome, first drug?", "expected_key": ["demodrug"], "avoid_key": ["dantrolene"]},
        {"id": "c", "task": "choose", "query": "Demo finding with other finding", "expected_ids": ["alpha"]},
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8")
    return path


SWEEP = ["--layers", "1,2", "--strengths", "0.3,4", "--vectors", "contrast,protocol"]


def test_calibrate_writes_table_curve_and_settings(tiny_calibration: Path, data_home: Path) -> None:
    png = data_home / "curve.png"
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "Baseline accuracy: 0% (0/3" in result.stdout
    assert "Sensitivity = wrong answers flagged" in result.stdout
    assert "contrast  1      0.3" in result.stdout
    assert "random    2      4" in result.stdout
    assert "[3/3]" in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (data_home / "probe" / "calibration-runs.jsonl").read_text(encoding="utf-8").count("\n") == 3
    # Every baseline is wrong, so no false-positive rate can be measured; no setting is chosen.
    assert "No domain configuration could be scored" in result.stdout
    assert not settings_path().exists()


def test_calibrate_json_and_chosen_setting(tiny_calibration: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Score the tiny model's replies as right for two items, so both rates can be measured.
    monkeypatch.setattr("probe.calibration.CalibrationItem.is_right", lambda self, chosen, reading: self.id != "a")
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["baseline_accuracy"]["hits"] == 2
    assert len(data["scores"]) == 3 * 2 * 2  # contrast, protocol and random, two layers, two strengths
    assert data["chosen"]["source"] in ("contrast", "protocol")
    assert data["settings_file"] == str(settings_path())
    settings = load_settings()
    assert (settings.layer, settings.strength) == (data["chosen"]["layer"], data["chosen"]["strength"])
    assert settings.source.startswith("protocol calibrate cases.jsonl on ")


def test_calibrate_rejects_bad_sweep_values(tiny_calibration: Path) -> None:
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--layers", "ten"])
    assert result.exit_code == 2
    assert "not a comma-separated list of numbers" in result.stderr


def test_calibrate_rejects_layer_out_of_range(tiny_calibration: Path) -> None:
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--layers", "7"])
    assert result.exit_code == 1
    assert "layer 7 is out of range" in result.stderr


def test_calibrate_scores_saved_runs(tiny_calibration: Path, data_home: Path) -> None:
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--json", "--no-save"])
    assert first.exit_code == 0, first.output
    runs = data_home / "probe" / "calibration-runs.jsonl"
    saved = runner.invoke(app, ["calibrate", str(tiny_calibration), "--from-runs", str(runs), "--json", "--no-save"])
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.stdout)["scores"] == json.loads(first.stdout)["scores"]


def test_calibrate_rejects_unreadable_runs(tiny_calibration: Path, tmp_path: Path) -> None:
    broken = tmp_path / "runs.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--from-runs", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:1: invalid saved run (Expecting property name enclosed in double quotes at column 2)" in result.stderr


def test_calibrate_resume_appends_missing_items(tiny_calibration: Path, data_home: Path) -> None:
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", "1", "--no-save"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--resume", "--no-save"])
    assert resumed.exit_code == 0, resumed.output
    runs = (data_home / "probe" / "calibration-runs.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in runs) == ["a", "b", "c"]
    assert resumed.stdout.startswith("Baseline accuracy: 0% (0/3,")
    assert "[2/3]" in resumed.stderr
    assert "[1/3]" not in resumed.stderr


def test_calibrate_resume_rejects_other_sweep(tiny_calibration: Path) -> None:
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", "1", "--no-save"])
    assert first.exit_code == 0, first.output
    other = runner.invoke(app, ["calibrate", str(tiny_calibration), "--layers", "1", "--strengths", "0.3", "--resume"])
    assert other.exit_code == 1
    assert "used another sweep" in other.stderr


def test_calibrate_keeps_earlier_runs(tiny_calibration: Path, data_home: Path) -> None:
    runs = data_home / "probe" / "calibration-runs.jsonl"
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", "1", "--no-save"])
    assert first.exit_code == 0, first.output
    earlier = runs.read_text(encoding="utf-8")

    second = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--no-save"])
    assert second.exit_code == 0, second.output
    backups = list(runs.parent.glob("calibration-runs.*.jsonl"))
    assert len(backups) == 1
    assert backups[0].read_text(encoding="utf-8") == earlier
    assert "Earlier runs kept as" in second.stderr
    assert runs.read_text(encoding="utf-8").count("\n") == 3


def test_calibrate_writes_runs_file_option(tiny_calibration: Path, data_home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "sweep-b.jsonl"
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--runs", str(runs), "--json", "--no-save"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == [str(runs)]
    assert runs.read_text(encoding="utf-8").count("\n") == 3
    assert not (data_home / "probe" / "calibration-runs.jsonl").exists()


def test_calibrate_joins_saved_sweeps(tiny_calibration: Path, tmp_path: Path) -> None:
    low, high = tmp_path / "low.jsonl", tmp_path / "high.jsonl"
    for runs, strength in ((low, "0.3"), (high, "4")):
        result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--layers", "1", "--strengths", strength, "--vectors", "contrast", "--runs", str(runs), "--no-save"])
        assert result.exit_code == 0, result.output

    joined = runner.invoke(app, ["calibrate", str(tiny_calibration), "--from-runs", str(low), "--from-runs", str(high), "--json", "--no-save"])
    assert joined.exit_code == 0, joined.output
    data = json.loads(joined.stdout)
    assert {(score["source"], score["strength"]) for score in data["scores"]} == {("contrast", 0.3), ("contrast", 4.0), ("random", 0.3), ("random", 4.0)}
    assert data["runs"] == [str(low), str(high)]


def test_calibrate_rejects_negative_strength(tiny_calibration: Path) -> None:
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--strengths", "0.3,-1"])
    assert result.exit_code == 2
    assert "-1 is out of range: use values from 0 to 5" in result.stderr


def test_calibrate_resume_drops_cut_line(tiny_calibration: Path, data_home: Path) -> None:
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", "2", "--no-save"])
    assert first.exit_code == 0, first.output
    runs = data_home / "probe" / "calibration-runs.jsonl"
    content = runs.read_text(encoding="utf-8")
    runs.write_text(content[: len(content) - 40], encoding="utf-8")  # as a run killed while writing item 2

    resumed = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--resume", "--no-save"])
    assert resumed.exit_code == 0, resumed.output
    assert "was cut off by a stopped run" in resumed.stderr
    lines = runs.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["id"] for line in lines)


def test_calibrate_join_rejects_other_items(tiny_calibration: Path, tmp_path: Path) -> None:
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    for runs, limit in ((full, "3"), (part, "2")):
        result = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", limit, "--runs", str(runs), "--no-save"])
        assert result.exit_code == 0, result.output

    joined = runner.invoke(app, ["calibrate", str(tiny_calibration), "--from-runs", str(full), "--from-runs", str(part), "--no-save"])
    assert joined.exit_code == 1
    assert f"{part} is missing 1 of the items in {full}" in joined.stderr


def test_calibrate_rejects_item_not_in_cases(tiny_calibration: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    first = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--limit", "1", "--runs", str(runs), "--no-save"])
    assert first.exit_code == 0, first.output
    runs.write_text(runs.read_text(encoding="utf-8").replace('"id": "a"', '"id": "zz9"'), encoding="utf-8")

    result = runner.invoke(app, ["calibrate", str(tiny_calibration), "--from-runs", str(runs), "--no-save"])
    assert result.exit_code == 1
    assert f"{runs}:1: item 'zz9' is not in the case file" in result.stderr


def test_calibrate_keeps_settings_when_target_missed(tiny_calibration: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every reply counts as right, and every setting flags it, so none meets a 0 % false-positive target.
    monkeypatch.setattr("probe.calibration.CalibrationItem.is_right", lambda self, chosen, reading: self.id != "a")
    monkeypatch.setattr("probe.calibration.flags_by_config", lambda step, sweep: dict.fromkeys(sweep_configs(sweep), True))
    result = runner.invoke(app, ["calibrate", str(tiny_calibration), *SWEEP, "--target-fpr", "0"])
    assert result.exit_code == 0, result.output
    assert "Settings not written" in result.stdout
    assert not settings_path().exists()
