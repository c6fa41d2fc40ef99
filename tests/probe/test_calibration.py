"""Scoring a calibration run: sensitivity, false-positive rate, precision and the chosen setting."""

from __future__ import annotations

from probe.calibration import (
    Config,
    ItemOutcome,
    build_report,
    calibration_order,
    choose_config,
    merge_outcomes,
    outcome_from_json,
    saved_configs,
    score_config,
)
from probe.cases import CalibrationItem

DOMAIN_LOW = Config("contrast", 14, 0.2)
DOMAIN_HIGH = Config("contrast", 14, 0.5)
RANDOM_LOW = Config("random", 14, 0.2)
RANDOM_HIGH = Config("random", 14, 0.5)
CONFIGS = [DOMAIN_LOW, DOMAIN_HIGH, RANDOM_LOW, RANDOM_HIGH]


def outcome(item_id: str, right: bool | None, *flagged: Config) -> ItemOutcome:
    return ItemOutcome(
        item_id=item_id, task="bare", tags=[], right=right, target="heat-stroke", flagged={config: config in flagged for config in CONFIGS}
    )


OUTCOMES = [
    # Five wrong baseline answers: the low domain setting flags two, the high one four.
    outcome("w1", False, DOMAIN_LOW, DOMAIN_HIGH, RANDOM_HIGH),
    outcome("w2", False, DOMAIN_LOW, DOMAIN_HIGH),
    outcome("w3", False, DOMAIN_HIGH),
    outcome("w4", False, DOMAIN_HIGH, RANDOM_HIGH),
    outcome("w5", False),
    # Five right ones: the high domain setting flags two of them, which is over 20 %.
    outcome("r1", True, DOMAIN_HIGH, RANDOM_HIGH),
    outcome("r2", True, DOMAIN_HIGH),
    outcome("r3", True, RANDOM_LOW),
    outcome("r4", True),
    outcome("r5", True),
    outcome("skipped", None),
]


def test_score_config_counts() -> None:
    score = score_config(OUTCOMES, DOMAIN_HIGH)
    assert (score.sensitivity.hits, score.sensitivity.total) == (4, 5)
    assert (score.false_positive_rate.hits, score.false_positive_rate.total) == (2, 5)
    assert (score.precision.hits, score.precision.total) == (4, 6)


def test_chosen_setting_respects_false_positive_target() -> None:
    report = build_report(OUTCOMES, CONFIGS, target=0.2)
    assert report.chosen is not None
    assert report.chosen.config == DOMAIN_LOW
    assert report.meets_target
    assert report.accuracy.hits == 5
    assert report.accuracy.total == 10


def test_random_control_never_chosen() -> None:
    scores = [score_config(OUTCOMES, config) for config in (RANDOM_LOW, RANDOM_HIGH)]
    assert choose_config(scores, 0.2) == (None, False)


def test_control_of_matches_layer_and_strength() -> None:
    report = build_report(OUTCOMES, CONFIGS, target=0.2)
    control = report.control_of(score_config(OUTCOMES, DOMAIN_HIGH))
    assert control is not None
    assert control.config == RANDOM_HIGH


def test_no_setting_within_target_reported() -> None:
    outcomes = [*OUTCOMES, outcome("r6", True, DOMAIN_LOW, DOMAIN_HIGH)]  # now every domain setting flags a right answer
    report = build_report(outcomes, CONFIGS, target=0.1)
    assert report.chosen is not None
    assert report.chosen.config == DOMAIN_LOW
    assert not report.meets_target


def test_saved_outcome_round_trip() -> None:
    saved = [outcome_from_json(item.to_json()) for item in OUTCOMES]
    assert saved_configs(saved) == CONFIGS
    assert build_report(saved, saved_configs(saved)).to_json() == build_report(OUTCOMES, CONFIGS).to_json()


def test_calibration_order_alternates_tasks() -> None:
    items = [
        CalibrationItem(id="a1", task="answer", query="q", context=["heat-stroke"], expected_key=["cooling"]),
        CalibrationItem(id="a2", task="answer", query="q", context=["anaphylaxis"], expected_key=["adrenaline"]),
        CalibrationItem(id="b1", task="bare", query="q", expected_key=["cooling"]),
        CalibrationItem(id="b2", task="bare", query="q", expected_key=["cooling"]),
        CalibrationItem(id="c1", task="choose", query="q", expected_ids=["heat-stroke"]),
    ]
    assert [item.id for item in calibration_order(items)] == ["b1", "c1", "a2", "b2", "a1"]


def test_merge_joins_sweeps_per_item() -> None:
    other = Config("protocol", 18, 0.35)
    first = [outcome("w1", False, DOMAIN_LOW), outcome("r1", True)]
    second = [
        ItemOutcome(item_id="r1", task="bare", tags=[], right=True, target=None, flagged={other: True, DOMAIN_LOW: False}),
        ItemOutcome(item_id="w1", task="bare", tags=[], right=False, target=None, flagged={other: False, DOMAIN_LOW: False}),
    ]

    merged, disagreements = merge_outcomes([first, second])

    assert [item.item_id for item in merged] == ["w1", "r1"]
    assert merged[0].flagged[DOMAIN_LOW] is True  # the first file's flag is kept
    assert merged[1].flagged[other] is True
    assert disagreements == 1


def test_merge_counts_baseline_disagreement() -> None:
    merged, disagreements = merge_outcomes([[outcome("w1", False)], [outcome("w1", True)]])
    assert merged[0].right is False
    assert disagreements == 1


def test_terminal_plot_axes_stay_within_rates() -> None:
    from probe.plots import terminal_plot

    report = build_report([outcome("w1", False, DOMAIN_HIGH), outcome("r1", True, DOMAIN_HIGH)], [DOMAIN_HIGH])
    text = terminal_plot(report)
    assert text is not None
    assert "1.00" in text
    assert "2.00" not in text
    assert "chance" in text


def test_choose_config_for_random_source() -> None:
    scores = [score_config(OUTCOMES, config) for config in CONFIGS]
    chosen, meets = choose_config(scores, 0.2, source="random")
    assert chosen is not None
    assert chosen.config == RANDOM_HIGH
    assert meets is True
