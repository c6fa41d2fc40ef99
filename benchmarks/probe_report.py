"""Summarise a saved calibration run as Markdown: accuracy, domain vectors against the random control.

Usage: .venv/bin/python benchmarks/probe_report.py CASES [RUNS_JSONL]
RUNS_JSONL defaults to the data folder's last run. Saved texts are re-read with the current rules.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from probe.calibration import CalibrationReport, ItemOutcome, build_report, load_saved_outcomes, saved_configs
from probe.cases import load_items
from router.library import load_library
from router.paths import data_home


def comparison_rows(report: CalibrationReport) -> list[str]:
    rows = [
        "| vector | layer | strength | sensitivity (wrong flagged) | false-positive rate (right flagged) | precision | random: sensitivity | random: false-positive rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for score in report.scores:
        if score.config.source == "random":
            continue
        control = report.control_of(score)
        rows.append(
            f"| {score.config.source} | {score.config.layer} | {score.config.strength:g} | {score.sensitivity.format()} | "
            f"{score.false_positive_rate.format()} | {score.precision.format()} | "
            f"{control.sensitivity.format() if control else 'n/a'} | {control.false_positive_rate.format() if control else 'n/a'} |"
        )
    return rows


def per_task_rows(outcomes: list[ItemOutcome], report: CalibrationReport) -> list[str]:
    rows = ["| task | items | baseline right | wrong flagged (chosen) | right flagged (chosen) |", "|---|---|---|---|---|"]
    chosen = report.chosen.config if report.chosen else None
    for task in ("bare", "choose", "answer"):
        scored = [o for o in outcomes if o.task == task and o.right is not None]
        wrong = [o for o in scored if not o.right]
        right = [o for o in scored if o.right]
        flagged_wrong = sum(o.flagged.get(chosen, False) for o in wrong) if chosen else 0
        flagged_right = sum(o.flagged.get(chosen, False) for o in right) if chosen else 0
        rows.append(f"| {task} | {len(scored)} | {len(right)} | {flagged_wrong}/{len(wrong)} | {flagged_right}/{len(right)} |")
    return rows


def discordant_pairs(outcomes: list[ItemOutcome], report: CalibrationReport) -> list[str]:
    """Count, per domain setting, the items that only the domain vector or only the random control flagged."""
    rows = ["| vector | layer | strength | wrong: domain only / random only | right: domain only / random only |", "|---|---|---|---|---|"]
    for score in report.scores:
        control = report.control_of(score)
        if score.config.source == "random" or control is None:
            continue
        cells = []
        for right in (False, True):
            group = [o for o in outcomes if o.right is right]
            domain_only = sum(o.flagged.get(score.config, False) and not o.flagged.get(control.config, False) for o in group)
            random_only = sum(o.flagged.get(control.config, False) and not o.flagged.get(score.config, False) for o in group)
            cells.append(f"{domain_only} / {random_only}")
        rows.append(f"| {score.config.source} | {score.config.layer} | {score.config.strength:g} | {cells[0]} | {cells[1]} |")
    return rows


def change_kinds(lines: list[dict]) -> Counter:  # type: ignore[type-arg]
    """Count what changed in the flipped domain runs, as saved by the run (before any re-reading)."""
    kinds: Counter = Counter()  # type: ignore[type-arg]
    for line in lines:
        for run in (line.get("step") or {}).get("perturbed", []):
            if run["source"] != "random":
                kinds.update(change.split(":")[0] for change in run["changes"])
    return kinds


def main() -> None:
    cases = Path(sys.argv[1])
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else data_home() / "probe" / "calibration-runs.jsonl"
    library = load_library(None)
    outcomes = load_saved_outcomes(path, load_items(cases, library), library)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    report = build_report(outcomes, saved_configs(outcomes))
    print(f"Items run: {len(outcomes)} ({len(report.skipped)} skipped); baseline accuracy {report.accuracy.format()}")
    for task, accuracy in report.per_task.items():
        print(f"- {task}: {accuracy.format()}")
    print()
    print("\n".join(comparison_rows(report)))
    print()
    if report.chosen:
        print(f"Chosen: {report.chosen.config.label()} (meets the false-positive target: {report.meets_target})")
    print()
    print("\n".join(per_task_rows(outcomes, report)))
    print()
    print("\n".join(discordant_pairs(outcomes, report)))
    print()
    print("Changes in flipped domain runs:", dict(change_kinds(lines)))


if __name__ == "__main__":
    main()
