"""The `protocol probe` and `protocol calibrate` commands: parse, call the probe, print."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from probe import report as render
from probe.calibration import (
    DEFAULT_LAYERS,
    DEFAULT_SOURCES,
    DEFAULT_STRENGTHS,
    TARGET_FALSE_POSITIVE_RATE,
    CalibrationReport,
    ItemOutcome,
    Sweep,
    build_report,
    load_saved_outcomes,
    merge_outcomes,
    outcome_line,
    run_calibration,
    saved_configs,
    sweep_configs,
)
from probe.cases import load_items
from probe.errors import CalibrationFileError, ProbeError
from probe.loading import check_layer, import_package, load_language_model
from probe.probing import probe_answer, record_probe
from probe.settings import MAX_STRENGTH, ProbeSettings, save_settings, settings_path
from router.console import consoles, fail, print_json
from router.errors import RouterError
from router.library import load_library
from router.model import resolve_model
from router.paths import data_home

LibraryOption = Annotated[Path | None, typer.Option("--library", "-l", help="Protocol library folder (default: PROTOCOL_LIBRARY, then the starter library).")]
ModelOption = Annotated[Path | None, typer.Option("--model", "-m", help="GGUF model file (default: PROTOCOL_MODEL, then the installed default model).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
MAX_LAYER_INDEX = 1023  # a bound for typing mistakes only; the model's own layer count is checked once it loads


def parse_numbers(text: str, kind: type, option: str, low: float, high: float) -> tuple:  # type: ignore[type-arg]
    """Parse a comma-separated list such as "10,14,18" for a sweep option. Every value must lie in [low, high]."""
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=option) from None
    if not values:
        raise typer.BadParameter("give at least one value", param_hint=option)
    outside = [value for value in values if not low <= value <= high]
    if outside:
        raise typer.BadParameter(f"{outside[0]:g} is out of range: use values from {low:g} to {high:g}", param_hint=option)
    return values


def probe_command(
    query: Annotated[str, typer.Argument(help="The clinical query, quoted.")],
    library: LibraryOption = None,
    model: ModelOption = None,
    control: Annotated[bool, typer.Option("--control", help="Also run as many same-norm random vectors; they never change the verdict.")] = False,
    answer_id: Annotated[str | None, typer.Option("--answer-id", help="Store the result in this answer's audit record.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Rerun a query's routing choice and answer under small activation perturbations and report STABLE or UNSTABLE."""
    out, err = consoles()
    try:
        loaded = load_library(library)
        result = probe_answer(query, loaded, model=model, with_control=control)
        if answer_id:
            record_probe(answer_id, result)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, result.to_json())
    else:
        render.print_probe(result, out)


def calibrate_command(
    cases: Annotated[Path, typer.Argument(help="Calibration file: JSONL, one labelled item per line.")],
    library: LibraryOption = None,
    model: ModelOption = None,
    layers: Annotated[str, typer.Option("--layers", help="Decoder layers to sweep, comma-separated.")] = ",".join(map(str, DEFAULT_LAYERS)),
    strengths: Annotated[str, typer.Option("--strengths", help="Strengths to sweep, as multiples of the hidden-state norm, comma-separated.")] = ",".join(map(str, DEFAULT_STRENGTHS)),
    vectors: Annotated[str, typer.Option("--vectors", help="Domain vector sources: contrast, protocol or both, comma-separated.")] = ",".join(DEFAULT_SOURCES),
    max_vectors: Annotated[int, typer.Option("--max-vectors", min=1, max=16, help="Most domain vectors per item (one per look-alike).")] = 1,
    target_fpr: Annotated[float, typer.Option("--target-fpr", min=0.0, max=1.0, help="Highest false-positive rate (0-1) the chosen setting may have.")] = TARGET_FALSE_POSITIVE_RATE,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Run only the first N items.")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Where to write the curve as PNG (default: the data folder).")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write the chosen layer and strength to the probe settings file.")] = True,
    resume: Annotated[bool, typer.Option("--resume", help="Skip the items already saved by an earlier run of the same sweep and append the rest.")] = False,
    from_runs: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-runs",
            help="Score the per-item runs saved by earlier calibrations instead of running the model (the sweep options, --limit and --resume are then unused); repeat to join sweeps over the same items.",
        ),
    ] = None,
    runs_file: Annotated[
        Path | None, typer.Option("--runs", help="Where to save the per-item runs (default: probe/calibration-runs.jsonl in the data folder).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a labelled case set over a sweep of layers and strengths, report sensitivity and false-positive rate, and fix the setting."""
    out, err = consoles()
    sweep = Sweep(
        layers=parse_numbers(layers, int, "--layers", 0, MAX_LAYER_INDEX),
        strengths=parse_numbers(strengths, float, "--strengths", 0.0, MAX_STRENGTH),
        sources=parse_sources(vectors),
        max_vectors=max_vectors,
    )
    try:
        import_package("matplotlib")  # the curve is drawn after the long run, so check for it before
        if from_runs:
            report, disagreements = score_saved_runs(from_runs, cases, library, target_fpr)
            runs_paths = from_runs
            if disagreements:
                err.print(f"{disagreements} flags or baseline scores differ between the runs files; the first file's are kept.")
        else:
            report, outcomes_path = run_and_score(cases, library, model, sweep, limit, target_fpr, err, not json_output, resume, runs_file)
            runs_paths = [outcomes_path]
        png_path = render_png(report, png)
        written = write_settings(report, sweep, cases) if save and report.chosen and report.meets_target else None
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, {**report.to_json(), "png": str(png_path), "runs": [str(path) for path in runs_paths], "settings_file": str(written) if written else None})
        return
    render.print_calibration(report, out, terminal_chart(report))
    out.print(f"Curve: {escape(str(png_path))}; per-item runs: {escape(', '.join(map(str, runs_paths)))}")
    if written:
        out.print(f"Settings written to {escape(str(written))}.")
    elif save and report.chosen:
        out.print("Settings not written: no setting meets the false-positive target, so the probe keeps its current setting.")


def parse_sources(text: str) -> tuple:  # type: ignore[type-arg]
    sources = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [source for source in sources if source not in ("contrast", "protocol")]
    if unknown or not sources:
        raise typer.BadParameter(f"unknown vector source {unknown or text!r}: use contrast, protocol or both", param_hint="--vectors")
    return sources


def run_and_score(cases, library, model, sweep, limit, target_fpr, err, show_progress, resume, runs_file) -> tuple[CalibrationReport, Path]:  # type: ignore[no-untyped-def]
    """Run the sweep, saving each item's outcome as a JSON line as soon as it is scored.

    With `resume`, items already in the saved runs are skipped and the new ones appended, so a
    long calibration can run in parts. The report then covers every saved item. Without it, an
    earlier runs file is kept under a dated name rather than overwritten.
    """
    loaded = load_library(library)
    all_items = load_items(cases, loaded)
    items = all_items[:limit]
    outcomes_path = runs_file or data_home() / "probe" / "calibration-runs.jsonl"
    if resume and drop_cut_line(outcomes_path):
        err.print(f"The last line of {escape(str(outcomes_path))} was cut off by a stopped run; that item runs again.")
    saved = load_saved_outcomes(outcomes_path, all_items, loaded) if resume and outcomes_path.exists() else []
    check_same_sweep(saved, sweep, outcomes_path)
    finished = {outcome.item_id for outcome in saved}
    pending = [item for item in items if item.id not in finished]
    language_model = load_language_model(resolve_model(model)) if pending else None
    if language_model:
        for layer in sweep.layers:
            check_layer(layer, language_model.layer_count)

    if not resume:
        backup = keep_earlier_runs(outcomes_path)
        if backup:
            err.print(f"Earlier runs kept as {escape(str(backup))}.")
    outcomes_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = len(finished)
    with outcomes_path.open("a" if resume else "w", encoding="utf-8") as runs:

        def on_item(outcome: ItemOutcome) -> None:
            nonlocal done
            done += 1
            runs.write(outcome_line(outcome) + "\n")
            runs.flush()
            if show_progress:
                err.print(escape(render.item_progress(outcome, done, len(items), time.monotonic() - started)))

        outcomes = run_calibration(language_model, loaded, pending, sweep, on_item) if pending else []
    return build_report(saved + outcomes, sweep_configs(sweep), target_fpr), outcomes_path


def drop_cut_line(path: Path) -> bool:
    """Remove a last line that has no newline, which only a stopped run leaves, and return whether one was removed."""
    if not path.is_file():
        return False
    content = path.read_bytes()
    if not content or content.endswith(b"\n"):
        return False
    with path.open("r+b") as runs:
        runs.truncate(content.rfind(b"\n") + 1)
    return True


def keep_earlier_runs(path: Path) -> Path | None:
    """Rename a non-empty runs file to a dated name beside it, so a new calibration cannot overwrite it."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    counter = 1
    while backup.exists():
        counter += 1
        backup = path.with_name(f"{path.stem}.{stamp}-{counter}{path.suffix}")
    path.rename(backup)
    return backup


def check_same_sweep(saved: list[ItemOutcome], sweep: Sweep, path: Path) -> None:
    """Raise CalibrationFileError when saved runs used other layers, strengths or vectors than this sweep."""
    expected = set(sweep_configs(sweep))
    for outcome in saved:
        if outcome.flagged and set(outcome.flagged) != expected:
            raise CalibrationFileError(
                f"the saved runs in {path} used another sweep (item {outcome.item_id}): pass the same --layers, "
                "--strengths and --vectors, or start again without --resume"
            )


def score_saved_runs(paths: list[Path], cases: Path, library: Path | None, target_fpr: float) -> tuple[CalibrationReport, int]:
    """Score the outcomes saved by earlier runs, re-reading their texts with the current rules.

    Every file must contain the same items, so that each setting is scored on the same answers.
    Returns the report and how many flags differ between the files (see `merge_outcomes`).
    """
    loaded = load_library(library)
    items = load_items(cases, loaded)
    runs = []
    for path in paths:
        outcomes = load_saved_outcomes(path, items, loaded)
        if not outcomes:
            raise CalibrationFileError(f"{path} contains no saved runs: pass the calibration-runs.jsonl that calibrate wrote")
        if runs:
            check_same_items(runs[0], outcomes, paths[0], path)
        runs.append(outcomes)
    merged, disagreements = merge_outcomes(runs)
    return build_report(merged, saved_configs(merged), target_fpr), disagreements


def check_same_items(first: list[ItemOutcome], other: list[ItemOutcome], first_path: Path, other_path: Path) -> None:
    """Raise CalibrationFileError when two runs files do not contain the same items."""
    first_ids = {outcome.item_id for outcome in first}
    other_ids = {outcome.item_id for outcome in other}
    pairs = ((first_ids - other_ids, first_path, other_path), (other_ids - first_ids, other_path, first_path))
    for missing, complete_path, incomplete_path in pairs:
        if missing:
            raise CalibrationFileError(
                f"{incomplete_path} is missing {len(missing)} of the items in {complete_path} ({', '.join(sorted(missing)[:5])}): "
                "finish it with calibrate --resume --runs FILE and the same sweep, or join files over the same items"
            )


def render_png(report: CalibrationReport, png: Path | None) -> Path:
    from probe.plots import write_png

    return write_png(report, png or data_home() / "probe" / "calibration.png")


def terminal_chart(report: CalibrationReport) -> str | None:
    from probe.plots import terminal_plot

    try:
        return terminal_plot(report)
    except ProbeError:  # plotext is optional: the table carries the same numbers
        return None


def write_settings(report: CalibrationReport, sweep: Sweep, cases: Path) -> Path:
    chosen = report.chosen
    assert chosen is not None
    settings = ProbeSettings(
        layer=chosen.config.layer,
        strength=chosen.config.strength,
        vector_kind=chosen.config.source,  # type: ignore[arg-type]
        max_vectors=sweep.max_vectors,
        choice_tokens=sweep.choice_tokens,
        answer_tokens=sweep.answer_tokens,
        seed=sweep.seed,
        source=(
            f"protocol calibrate {cases.name} on {time.strftime('%Y-%m-%d')}, {report.accuracy.total} scored items: sensitivity "
            f"{chosen.sensitivity.format()}, false-positive rate {chosen.false_positive_rate.format()}"
        ),
    )
    return save_settings(settings, settings_path())


def register(app: typer.Typer) -> None:
    """Add the `probe` and `calibrate` commands to the `protocol` app."""
    app.command("probe")(probe_command)
    app.command("calibrate")(calibrate_command)

