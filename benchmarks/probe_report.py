"""Summarise saved calibration runs as Markdown: accuracy, domain vectors against the random control.

Usage: .venv/bin/python benchmarks/probe_report.py CASES [RUNS_JSONL ...]
RUNS_JSONL defaults to the data folder's last run. Several files, from sweeps of other layers or
strengths over the same items, are joined per item. A setting that two files share keeps the first
file's flags, and the number that differ is printed. Saved texts are re-read with the current rules.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from probe.calibration import (
    TARGET_FALSE_POSITIVE_RATE,
    CalibrationReport,
    Config,
    ItemOutcome,
    build_report,
    choose_config,
    load_saved_outcomes,
    merge_outcomes,
    saved_configs,
    score_config,
)
from probe.cases import load_items
from probe.stats import sign_test_p
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
    rows = [
        "| vector | layer | strength | wrong: domain only / random only | sign test p | right: domain only / random only | sign test p |",
        "|---|---|---|---|---|---|---|",
    ]
    for score in report.scores:
        control = report.control_of(score)
        if score.config.source == "random" or control is None:
            continue
        cells = []
        for right in (False, True):
            group = [o for o in outcomes if o.right is right]
            domain_only = sum(o.flagged.get(score.config, False) and not o.flagged.get(control.config, False) for o in group)
            random_only = sum(o.flagged.get(control.config, False) and not o.flagged.get(score.config, False) for o in group)
            cells.append(f"{domain_only} / {random_only} | {sign_test_p(domain_only, random_only):.2f}")
        rows.append(f"| {score.config.source} | {score.config.layer} | {score.config.strength:g} | {cells[0]} | {cells[1]} |")
    return rows


def best_within_target(outcomes: list[ItemOutcome], configs: list[Config], source: str) -> str:
    """Describe the most sensitive setting of one vector source whose false-positive rate meets the target."""
    scores = [score_config(outcomes, config) for config in configs]
    best, meets = choose_config(scores, TARGET_FALSE_POSITIVE_RATE, source)
    if best is None or not meets:
        return f"{source}: no setting within {TARGET_FALSE_POSITIVE_RATE:.0%} false positives"
    return (
        f"{source}: layer {best.config.layer}, strength {best.config.strength:g}: sensitivity {best.sensitivity.format()}, "
        f"false-positive rate {best.false_positive_rate.format()}"
    )


def split_half_rows(outcomes: list[ItemOutcome], configs: list[Config]) -> list[str]:
    """Choose the setting on one half of the items and score it on the other, both ways round.

    This shows how much of the chosen setting's figure comes from choosing it on the same items.
    """
    halves = [outcomes[0::2], outcomes[1::2]]
    rows = ["| chosen on | setting | sensitivity on the other half | false-positive rate on the other half |", "|---|---|---|---|"]
    for name, (tuning, held_out) in (("even items", halves), ("odd items", halves[::-1])):
        chosen, _ = choose_config([score_config(tuning, config) for config in configs], TARGET_FALSE_POSITIVE_RATE)
        if chosen is None:
            rows.append(f"| {name} | none | n/a | n/a |")
            continue
        score = score_config(held_out, chosen.config)
        rows.append(f"| {name} | {chosen.config.label()} | {score.sensitivity.format()} | {score.false_positive_rate.format()} |")
    return rows


def task_group_rows(outcomes: list[ItemOutcome], configs: list[Config]) -> list[str]:
    """Score every setting on the routing and answer steps alone, the steps that `protocol ask` runs."""
    steps = [outcome for outcome in outcomes if outcome.task in ("choose", "answer")]
    rows = ["| vector | layer | strength | sensitivity | false-positive rate | precision |", "|---|---|---|---|---|---|"]
    for config in configs:
        score = score_config(steps, config)
        rows.append(
            f"| {config.source} | {config.layer} | {config.strength:g} | {score.sensitivity.format()} | "
            f"{score.false_positive_rate.format()} | {score.precision.format()} |"
        )
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
    paths = [Path(arg) for arg in sys.argv[2:]] or [data_home() / "probe" / "calibration-runs.jsonl"]
    library = load_library(None)
    items = load_items(cases, library)
    outcomes, disagreements = merge_outcomes([load_saved_outcomes(path, items, library) for path in paths])
    lines = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    configs = saved_configs(outcomes)
    report = build_report(outcomes, configs)
    if len(paths) > 1:
        print(f"Joined {len(paths)} runs files; flags or baseline scores that disagree between them: {disagreements}")
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
    print("Most sensitive setting within the false-positive target, per vector source:")
    for source in dict.fromkeys(config.source for config in configs):
        print(f"- {best_within_target(outcomes, configs, source)}")
    print()
    print("\n".join(split_half_rows(outcomes, configs)))
    print()
    print("Routing and answer steps only (no bare questions):")
    print("\n".join(task_group_rows(outcomes, configs)))
    print()
    print("Changes in flipped domain runs:", dict(change_kinds(lines)))


if __name__ == "__main__":
    main()
