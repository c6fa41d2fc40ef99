"""Probe results: ProbeResult with its perturbed runs and flips, as JSON and as text lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from probe.settings import ProbeSettings

StepName = Literal["choice", "answer", "bare"]
NOT_CORRECTNESS = "stable under perturbation; not a check of correctness"
REVIEW_FLAG = "needs human review"


@dataclass(frozen=True)
class PerturbedRun:
    """One regeneration under one perturbation, its reading, and how its meaning differs from the baseline."""

    step: StepName
    vector: str
    source: str  # "contrast", "protocol" or "random"
    layer: int
    strength: float
    text: str
    reading: dict[str, Any]
    changes: tuple[str, ...]

    @property
    def flipped(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "vector": self.vector,
            "source": self.source,
            "layer": self.layer,
            "strength": self.strength,
            "text": self.text,
            "reading": self.reading,
            "changes": list(self.changes),
            "flipped": self.flipped,
        }


@dataclass(frozen=True)
class Flip:
    """A change of meaning: which step, under which vector, and what changed."""

    step: StepName
    vector: str
    layer: int
    strength: float
    changes: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.step} step, {self.vector} (strength {self.strength:g}, layer {self.layer}): {'; '.join(self.changes)}"

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "vector": self.vector, "layer": self.layer, "strength": self.strength, "changes": list(self.changes)}


@dataclass
class StepResult:
    """The baseline and perturbed runs of one prompt: the routing choice or the answer."""

    step: StepName
    baseline_text: str
    baseline: dict[str, Any]
    runs: list[PerturbedRun]
    notice: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "baseline_text": self.baseline_text,
            "baseline": self.baseline,
            "perturbed": [run.to_json() for run in self.runs],
            "notice": self.notice,
        }


def flip_of(run: PerturbedRun) -> Flip:
    return Flip(run.step, run.vector, run.layer, run.strength, run.changes)


@dataclass
class ProbeResult:
    """The probe of one query: baseline and perturbed results per step, flips, and the verdict.

    `stable` is True when no domain vector changed the meaning. That is stability under
    perturbation, not a check of correctness. Random-control runs never change the verdict.
    """

    query: str
    probed: bool
    settings: ProbeSettings
    model_sha256: str
    steps: list[StepResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def runs(self, control: bool) -> list[PerturbedRun]:
        return [run for step in self.steps for run in step.runs if (run.source == "random") == control]

    @property
    def flips(self) -> list[Flip]:
        return [flip_of(run) for run in self.runs(control=False) if run.flipped]

    @property
    def control_flips(self) -> list[Flip]:
        return [flip_of(run) for run in self.runs(control=True) if run.flipped]

    @property
    def stable(self) -> bool:
        return not self.flips

    @property
    def verdict(self) -> str:
        if not self.probed:
            return "NOT PROBED"
        return "STABLE" if self.stable else "UNSTABLE"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "stable": self.stable if self.probed else None,  # nothing was perturbed, so it is neither stable nor unstable
            "probed": self.probed,
            "meaning": NOT_CORRECTNESS,
            "needs_review": self.probed and not self.stable,
            "query": self.query,
            "settings": self.settings.model_dump(),
            "model_sha256": self.model_sha256,
            "baseline": {step.step: step.baseline for step in self.steps},
            "steps": [step.to_json() for step in self.steps],
            "flips": [flip.to_json() for flip in self.flips],
            "control_flips": [flip.to_json() for flip in self.control_flips],
            "notices": self.notices,
        }


def format_probe(result: ProbeResult) -> list[str]:
    """Return the probe report as plain text lines, verdict first; the caller adds any styling."""
    settings = f"strength {result.settings.strength:g}, layer {result.settings.layer}"
    domain_runs = result.runs(control=False)
    if not result.probed:
        lines = ["Probe: NOT PROBED - the model made no choice that a perturbation could change."]
    elif result.stable:
        lines = [
            f"Probe: STABLE - {NOT_CORRECTNESS}. No change in the chosen protocols, key drug, action or dose "
            f"under {len(domain_runs)} perturbed runs ({settings})."
        ]
    else:
        lines = [
            f"Probe: UNSTABLE - {REVIEW_FLAG}: the meaning changed in {len(result.flips)} of {len(domain_runs)} "
            f"perturbed runs ({settings}):"
        ]
        lines += [f"  - {flip.describe()}" for flip in result.flips]
    control_runs = result.runs(control=True)
    if control_runs:
        lines.append(f"  Random control: {len(result.control_flips)} of {len(control_runs)} same-norm random vectors changed the meaning.")
    lines += [f"  Note: {notice}" for notice in result.notices]
    return lines
