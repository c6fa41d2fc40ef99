"""Calibrate the probe: run labelled items over a sweep of layers, strengths and vectors, and score it.

A configuration (vector source, layer, strength) flags an item when any of its vectors changes
the meaning of the baseline reply. Wrong baseline replies that are flagged count toward
sensitivity, right ones toward the false-positive rate. The random control always uses as many
vectors as the domain source it is compared with, on the same layers and at the same strengths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.cases import CalibrationItem
from probe.errors import CalibrationFileError
from probe.inject import Perturbation
from probe.loading import LanguageModel
from probe.meaning import TermTable, answer_changes, choice_changes, read_answer, read_choice
from probe.result import StepResult
from probe.settings import ANSWER_TOKENS, CHOICE_TOKENS
from probe.stats import Proportion
from probe.steps import Reader, run_answer_step, run_bare_step, run_choice_step
from probe.vectors import PerturbationVector, VectorSource, domain_vectors, random_controls
from router.library import Library
from router.routing import RouteIndex, route_query
from router.service import cut_query

# The default sweep surrounds the shipped setting; layer 10 and strength 0.25 did worse on the default model.
DEFAULT_LAYERS = (14, 18)
DEFAULT_STRENGTHS = (0.35, 0.5)
DEFAULT_SOURCES: tuple[VectorSource, ...] = ("contrast", "protocol")
TARGET_FALSE_POSITIVE_RATE = 0.2


@dataclass(frozen=True)
class Sweep:
    """The grid to calibrate over; every domain source gets a random control of the same size."""

    layers: tuple[int, ...] = DEFAULT_LAYERS
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    sources: tuple[VectorSource, ...] = DEFAULT_SOURCES
    max_vectors: int = 1
    seed: int = 0
    choice_tokens: int = CHOICE_TOKENS
    answer_tokens: int = ANSWER_TOKENS


@dataclass(frozen=True)
class Config:
    source: str
    layer: int
    strength: float

    def label(self) -> str:
        return f"{self.source} layer {self.layer} strength {self.strength:g}"


@dataclass
class ItemOutcome:
    """The baseline score of one item and which configurations flagged it."""

    item_id: str
    task: str
    tags: list[str]
    right: bool | None  # None when the item could not be run
    target: str | None
    flagged: dict[Config, bool] = field(default_factory=dict)
    step: StepResult | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "task": self.task,
            "tags": self.tags,
            "right": self.right,
            "target": self.target,
            "skipped": self.skipped,
            "flagged": [{"source": c.source, "layer": c.layer, "strength": c.strength, "flagged": v} for c, v in self.flagged.items()],
            "step": self.step.to_json() if self.step else None,
        }


@dataclass(frozen=True)
class ConfigScore:
    """Sensitivity, false-positive rate and precision of one configuration."""

    config: Config
    sensitivity: Proportion  # wrong baseline replies flagged
    false_positive_rate: Proportion  # right baseline replies flagged
    precision: Proportion  # flagged replies that were wrong

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.config.source,
            "layer": self.config.layer,
            "strength": self.config.strength,
            "sensitivity": self.sensitivity.to_json(),
            "false_positive_rate": self.false_positive_rate.to_json(),
            "precision": self.precision.to_json(),
        }


def sweep_perturbations(vectors_by_layer: dict[int, dict[str, list[PerturbationVector]]], sweep: Sweep) -> list[Perturbation]:
    perturbations = []
    for layer_vectors in vectors_by_layer.values():
        for vectors in layer_vectors.values():
            for vector in vectors:
                perturbations += [Perturbation(vector, strength) for strength in sweep.strengths]
    return perturbations


def item_vectors(
    language_model: LanguageModel, library: Library, target: str, sweep: Sweep
) -> dict[int, dict[str, list[PerturbationVector]]]:
    """Build every domain source and its random control on every swept layer for one target protocol."""
    by_layer: dict[int, dict[str, list[PerturbationVector]]] = {}
    for layer in sweep.layers:
        sources: dict[str, list[PerturbationVector]] = {}
        for source in sweep.sources:
            sources[source] = domain_vectors(language_model, library, target, layer, source, sweep.max_vectors)
        first = sources[sweep.sources[0]]
        sources["random"] = random_controls(first, sweep.seed)
        by_layer[layer] = sources
    return by_layer


def item_target(item: CalibrationItem, index: RouteIndex, query: str) -> tuple[str | None, Any]:
    """Return the protocol the vectors start from, chosen without the labels, and the route decision."""
    if item.task == "answer":
        return item.context[0], None
    decision = route_query(query, index)
    if decision.no_match:
        return None, decision
    top = next(candidate.id for candidate in decision.candidates if not candidate.companion)
    return top, decision


def run_item(language_model: LanguageModel, library: Library, index: RouteIndex, item: CalibrationItem, sweep: Sweep) -> ItemOutcome:
    """Run one item's baseline and every swept perturbation, then score the baseline and each configuration."""
    query = cut_query(item.query).text
    target, decision = item_target(item, index, query)
    outcome = ItemOutcome(item_id=item.id, task=item.task, tags=item.tags, right=None, target=target)
    if item.task == "choose" and (decision is None or decision.no_match):
        outcome.skipped = "the router found no candidate protocol, so there is no choice to make"
        return outcome

    vectors = item_vectors(language_model, library, target, sweep) if target else {}
    perturbations = sweep_perturbations(vectors, sweep)
    if item.task == "choose":
        step, chosen = run_choice_step(language_model, library, query, decision.candidates, perturbations, sweep.choice_tokens)
        outcome.right = item.is_right(chosen, None)
    elif item.task == "answer":
        protocols = [library.get(protocol_id) for protocol_id in item.context]
        step, reading = run_answer_step(language_model, library, query, protocols, perturbations, sweep.answer_tokens)
        outcome.right = item.is_right(None, reading)
    else:
        step, reading = run_bare_step(language_model, library, query, perturbations, sweep.answer_tokens)
        outcome.right = item.is_right(None, reading)
    outcome.step = step
    outcome.flagged = flags_by_config(step, sweep)
    return outcome


def sweep_configs(sweep: Sweep) -> list[Config]:
    return [
        Config(source, layer, strength)
        for source in (*sweep.sources, "random")
        for layer in sweep.layers
        for strength in sweep.strengths
    ]


def flags_by_config(step: StepResult, sweep: Sweep) -> dict[Config, bool]:
    flags = {config: False for config in sweep_configs(sweep)}
    for run in step.runs:
        config = Config(run.source, run.layer, run.strength)
        flags[config] = flags[config] or run.flipped
    return flags


def calibration_order(items: list[CalibrationItem]) -> list[CalibrationItem]:
    """Order items so that the tasks alternate and, within a task, items sharing a context are adjacent.

    Alternating keeps a run stopped early balanced across tasks; adjacency lets the prompt
    prefix cache serve the items that share the protocols in context.
    """
    queues = [sorted((item for item in items if item.task == task), key=lambda item: item.context) for task in ("bare", "choose", "answer")]
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def run_calibration(
    language_model: LanguageModel,
    library: Library,
    items: Iterable[CalibrationItem],
    sweep: Sweep,
    on_item: Callable[[ItemOutcome], None] | None = None,
) -> list[ItemOutcome]:
    """Run every item; `on_item` receives each outcome as soon as it is scored, for progress and saving."""
    for layer in sweep.layers:
        language_model.layer(layer)  # raises LayerRangeError before any slow work
    index = RouteIndex(library)
    outcomes = []
    for item in calibration_order(list(items)):
        outcome = run_item(language_model, library, index, item, sweep)
        outcomes.append(outcome)
        if on_item:
            on_item(outcome)
    return outcomes


def score_config(outcomes: list[ItemOutcome], config: Config) -> ConfigScore:
    scored = [outcome for outcome in outcomes if outcome.right is not None]
    wrong = [outcome for outcome in scored if not outcome.right]
    right = [outcome for outcome in scored if outcome.right]
    flagged_wrong = sum(outcome.flagged.get(config, False) for outcome in wrong)
    flagged_right = sum(outcome.flagged.get(config, False) for outcome in right)
    return ConfigScore(
        config=config,
        sensitivity=Proportion(flagged_wrong, len(wrong)),
        false_positive_rate=Proportion(flagged_right, len(right)),
        precision=Proportion(flagged_wrong, flagged_wrong + flagged_right),
    )


def baseline_accuracy(outcomes: list[ItemOutcome]) -> Proportion:
    scored = [outcome for outcome in outcomes if outcome.right is not None]
    return Proportion(sum(bool(outcome.right) for outcome in scored), len(scored))


@dataclass
class CalibrationReport:
    """Scores of every configuration and the one chosen for the probe settings."""

    accuracy: Proportion
    scores: list[ConfigScore]
    chosen: ConfigScore | None
    meets_target: bool
    target_false_positive_rate: float
    skipped: list[tuple[str, str]]
    per_task: dict[str, Proportion]

    def control_of(self, score: ConfigScore) -> ConfigScore | None:
        """Return the random control's score at the same layer and strength."""
        for other in self.scores:
            if other.config.source == "random" and (other.config.layer, other.config.strength) == (score.config.layer, score.config.strength):
                return other
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline_accuracy": self.accuracy.to_json(),
            "per_task_accuracy": {task: value.to_json() for task, value in self.per_task.items()},
            "target_false_positive_rate": self.target_false_positive_rate,
            "chosen": self.chosen.to_json() if self.chosen else None,
            "meets_target": self.meets_target,
            "scores": [score.to_json() for score in self.scores],
            "skipped": [{"id": item_id, "reason": reason} for item_id, reason in self.skipped],
        }


def choose_config(scores: list[ConfigScore], target: float, source: str | None = None) -> tuple[ConfigScore | None, bool]:
    """Choose the configuration with the highest sensitivity whose false-positive rate is at most `target`.

    Only domain configurations are considered, or with `source` only that source's, random included.
    Ties go to higher precision, then to the lower strength. When none meets the target, the
    configuration with the lowest false-positive rate is returned with False. Without both right
    and wrong baseline answers neither rate is measured, and None is returned.
    """
    candidates = [score for score in scores if is_candidate(score, source)]
    if not candidates:
        return None, False
    within = [score for score in candidates if (score.false_positive_rate.value or 0.0) <= target]
    if within:
        best = max(within, key=lambda s: (s.sensitivity.value or 0.0, s.precision.value or 0.0, -s.config.strength))
        return best, True
    best = min(candidates, key=lambda s: (s.false_positive_rate.value or 0.0, -(s.sensitivity.value or 0.0), s.config.strength))
    return best, False


def is_candidate(score: ConfigScore, source: str | None) -> bool:
    """Return whether a score can be chosen: of the requested source, with both rates measured."""
    if source is None and score.config.source == "random":
        return False
    if source is not None and score.config.source != source:
        return False
    return bool(score.sensitivity.total and score.false_positive_rate.total)


def saved_configs(outcomes: list[ItemOutcome]) -> list[Config]:
    """Return the configurations present in saved outcomes, in first-seen order."""
    return list(dict.fromkeys(config for outcome in outcomes for config in outcome.flagged))


def build_report(outcomes: list[ItemOutcome], configs: list[Config], target: float = TARGET_FALSE_POSITIVE_RATE) -> CalibrationReport:
    """Score every configuration and choose the one for the probe settings."""
    scores = [score_config(outcomes, config) for config in configs]
    chosen, meets = choose_config(scores, target)
    tasks = sorted({outcome.task for outcome in outcomes})
    per_task = {task: baseline_accuracy([o for o in outcomes if o.task == task]) for task in tasks}
    skipped = [(outcome.item_id, outcome.skipped) for outcome in outcomes if outcome.skipped]
    return CalibrationReport(baseline_accuracy(outcomes), scores, chosen, meets, target, skipped, per_task)


def outcome_line(outcome: ItemOutcome) -> str:
    return json.dumps(outcome.to_json(), ensure_ascii=False)


def rescore_saved(data: dict[str, Any], item: CalibrationItem | None, library: Library, table: TermTable) -> ItemOutcome:
    """Re-read one saved item's texts with the current reading rules and labels.

    Without its item or saved texts, the outcome keeps the flags and score saved with it.
    Routing replies are read against every id of the library, a superset of the candidates.
    """
    outcome = outcome_from_json(data)
    step = data.get("step")
    if item is None or not step:
        return outcome
    if step["step"] == "choice":
        ids = sorted(library.protocols)
        reader = Reader(read=lambda text: read_choice(text, ids), to_json=dict, changes=choice_changes)
    else:
        reader = Reader(read=lambda text: read_answer(text, table), to_json=dict, changes=answer_changes)
    baseline = reader.read(step["baseline_text"])
    outcome.right = item.is_right(baseline, None) if step["step"] == "choice" else item.is_right(None, baseline)
    flags = dict.fromkeys(outcome.flagged, False)
    for run in step["perturbed"]:
        config = Config(run["source"], run["layer"], run["strength"])
        flags[config] = flags.get(config, False) or bool(reader.changes(baseline, reader.read(run["text"])))
    outcome.flagged = flags
    return outcome


def load_saved_outcomes(path: Path, items: list[CalibrationItem], library: Library) -> list[ItemOutcome]:
    """Read the outcomes a calibration run saved, one JSON object per line, and re-read their texts."""
    by_id = {item.id: item for item in items}
    table = TermTable.for_library(library)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CalibrationFileError(f"cannot read the saved runs in {path} ({error}): pass the calibration-runs.jsonl that calibrate wrote") from None
    return [
        read_saved_line(f"{path}:{number}", line, by_id, library, table)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def read_saved_line(where: str, line: str, by_id: dict[str, CalibrationItem], library: Library, table: TermTable) -> ItemOutcome:
    """Re-score one saved line, or raise CalibrationFileError naming the file and line."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise CalibrationFileError(
            f"{where}: invalid saved run ({error.msg} at column {error.colno}): a stopped run can leave its last line cut; "
            "finish it with --resume, or delete that line"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise CalibrationFileError(f"{where}: not a saved calibration item (no id): pass the calibration-runs.jsonl that calibrate wrote")
    item = by_id.get(data["id"])
    if item is None:
        raise CalibrationFileError(f"{where}: item {data['id']!r} is not in the case file: pass the case file that these runs were made from")
    try:
        return rescore_saved(data, item, library, table)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CalibrationFileError(
            f"{where}: saved item {data['id']!r} is incomplete (missing or invalid {error}): pass the calibration-runs.jsonl that calibrate wrote"
        ) from None


def merge_outcomes(runs: list[list[ItemOutcome]]) -> tuple[list[ItemOutcome], int]:
    """Join the outcomes of several sweeps over the same items, per item, in first-seen order.

    A setting found in two sweeps keeps the first one's flag. Returns the outcomes and how many
    shared flags or baseline scores disagree, which happens when batches of other sizes round
    differently in bf16 and a greedy choice sits on a near tie.
    """
    merged: dict[str, ItemOutcome] = {}
    disagreements = 0
    for outcomes in runs:
        for outcome in outcomes:
            known = merged.setdefault(outcome.item_id, outcome)
            if known is outcome:
                continue
            disagreements += known.right != outcome.right
            for config, flagged in outcome.flagged.items():
                disagreements += config in known.flagged and known.flagged[config] != flagged
                known.flagged.setdefault(config, flagged)
    return list(merged.values()), disagreements


def outcome_from_json(data: dict[str, Any]) -> ItemOutcome:
    """Rebuild an outcome from a saved line, without its step, for re-scoring a saved run."""
    flagged = {Config(entry["source"], entry["layer"], entry["strength"]): entry["flagged"] for entry in data["flagged"]}
    return ItemOutcome(
        item_id=data["id"], task=data["task"], tags=data["tags"], right=data["right"], target=data["target"],
        flagged=flagged, skipped=data["skipped"],
    )


