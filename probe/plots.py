"""Draw the sensitivity against false-positive-rate curve: a PNG with matplotlib, text with plotext."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from probe.calibration import CalibrationReport, ConfigScore
from probe.loading import import_package

Curve = tuple[str, list[ConfigScore]]


def curves(report: CalibrationReport) -> list[Curve]:
    """Group the scores into one curve per vector source and layer, ordered by strength."""
    grouped: dict[str, list[ConfigScore]] = defaultdict(list)
    for score in report.scores:
        if score.sensitivity.total and score.false_positive_rate.total:
            grouped[f"{score.config.source} L{score.config.layer}"].append(score)
    return [(label, sorted(points, key=lambda s: s.config.strength)) for label, points in sorted(grouped.items())]


def coordinates(points: list[ConfigScore]) -> tuple[list[float], list[float]]:
    return [s.false_positive_rate.value or 0.0 for s in points], [s.sensitivity.value or 0.0 for s in points]


def write_png(report: CalibrationReport, path: Path) -> Path:
    """Save the curves as a PNG (Agg backend, no display needed) and return the path."""
    matplotlib = import_package("matplotlib")
    matplotlib.use("Agg")
    pyplot = import_package("matplotlib.pyplot")

    figure, axes = pyplot.subplots(figsize=(6.5, 5.5))
    drawn = curves(report)
    if not drawn:
        axes.text(0.5, 0.5, "no curve: the items need both right and wrong baseline answers", ha="center", fontsize=8)
    for label, points in drawn:
        x, y = coordinates(points)
        style = "--" if label.startswith("random") else "-"
        axes.plot(x, y, style, marker="o", label=label)
        for score, px, py in zip(points, x, y):
            axes.annotate(f"{score.config.strength:g}", (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    axes.axvline(report.target_false_positive_rate, color="red", linewidth=0.5, linestyle=":")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="false-positive rate (right answers flagged)", ylabel="sensitivity (wrong answers flagged)")
    axes.set_title("Perturbation probe: points are strengths (x hidden-state norm)")
    if drawn:
        axes.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    pyplot.close(figure)
    return path


def terminal_plot(report: CalibrationReport, width: int = 80, height: int = 22) -> str | None:
    """Return the curves drawn with plotext 6 as colourless text, or None when there is no curve.

    Without colour only a few curves stay readable. With a chosen setting, only its curve and the
    random control at its layer are drawn. The PNG has every curve.
    """
    drawn = curves(report)
    if report.chosen:
        layer = report.chosen.config.layer
        compared = {f"{report.chosen.config.source} L{layer}", f"random L{layer}"}
        drawn = [(label, points) for label, points in drawn if label in compared]
    if not drawn:
        return None
    figure = import_package("plotext").figure
    figure.clear()
    figure.plot_size(width, height)
    for label, points in drawn:
        x, y = coordinates(points)
        signal = figure.signal(x, y)
        signal.label(label)
        signal.lines()
        figure.draw(signal)
    chance = figure.signal([0.0, 1.0], [0.0, 1.0])  # flags drawn at random; it also keeps both axes at 0 to 1
    chance.label("chance")
    chance.lines()
    figure.draw(chance)
    figure.title("probe: sensitivity against false-positive rate (points are strengths)")
    figure.label("false-positive rate", "x")
    figure.label("sensitivity", "y")
    return str(figure.build().string(colorless=True))
