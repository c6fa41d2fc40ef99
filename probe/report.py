"""Render probe and calibration results on injected rich consoles."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probe.calibration import CalibrationReport, ItemOutcome
from probe.result import ProbeResult, format_probe


def print_probe(result: ProbeResult, out: Console) -> None:
    """Print the verdict, with the review flag in bold red when the answer is unstable."""
    lines = format_probe(result)
    style = "bold red" if result.probed and not result.stable else None
    out.print(escape(lines[0]), style=style)
    for line in lines[1:]:
        out.print(escape(line))
    for step in result.steps:
        out.print(f"Baseline {step.step}: {escape(step.baseline_text)}")


def calibration_table(report: CalibrationReport) -> Table:
    table = Table("vector", "layer", "strength", "sensitivity", "false-positive rate", "precision", box=None, pad_edge=False)
    for score in report.scores:
        table.add_row(
            score.config.source,
            str(score.config.layer),
            f"{score.config.strength:g}",
            score.sensitivity.format(),
            score.false_positive_rate.format(),
            score.precision.format(),
        )
    return table


def print_calibration(report: CalibrationReport, out: Console, chart: str | None) -> None:
    """Print accuracy, the per-configuration table, the chosen setting and the chart."""
    out.print(f"Baseline accuracy: {report.accuracy.format()}")
    for task, accuracy in report.per_task.items():
        out.print(f"  {task}: {accuracy.format()}")
    out.print("Sensitivity = wrong answers flagged; false-positive rate = right answers flagged; 95 % Wilson intervals.")
    out.print(calibration_table(report))
    for item_id, reason in report.skipped:
        out.print(f"Skipped {escape(item_id)}: {escape(reason)}")
    print_choice(report, out)
    if chart:
        out.print(chart, markup=False, highlight=False)


def print_choice(report: CalibrationReport, out: Console) -> None:
    chosen = report.chosen
    if chosen is None:
        out.print("No domain configuration could be scored: the items had no wrong or no right baseline answers.")
        return
    control = report.control_of(chosen)
    verdict = "meets" if report.meets_target else "does NOT meet"
    out.print(
        f"Chosen: {chosen.config.label()}; sensitivity {chosen.sensitivity.format()}, false-positive rate "
        f"{chosen.false_positive_rate.format()} ({verdict} the target of at most {report.target_false_positive_rate:.0%})."
    )
    if control is not None:
        out.print(
            f"Random control at the same layer and strength: sensitivity {control.sensitivity.format()}, "
            f"false-positive rate {control.false_positive_rate.format()}."
        )


def item_progress(outcome: ItemOutcome, done: int, total: int, elapsed: float) -> str:
    """Return one progress line for stderr."""
    if outcome.skipped:
        return f"[{done}/{total}] {outcome.item_id} skipped: {outcome.skipped}"
    flagged = sum(outcome.flagged.values())
    state = "right" if outcome.right else "wrong"
    return f"[{done}/{total}] {outcome.item_id} {outcome.task} baseline {state}, flagged by {flagged}/{len(outcome.flagged)} configurations ({elapsed:.0f} s)"
