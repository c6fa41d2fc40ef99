"""Wilson score intervals and proportions."""

from __future__ import annotations

import pytest

from probe.stats import Proportion, sign_test_p, wilson_interval


@pytest.mark.parametrize(
    ("hits", "total", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 100, 0.0018, 0.0545)],
    ids=["none", "half", "all", "rare"],
)
def test_wilson_interval_known_values(hits: int, total: int, low: float, high: float) -> None:
    interval = wilson_interval(hits, total)
    assert interval is not None
    assert interval[0] == pytest.approx(low, abs=1e-4)
    assert interval[1] == pytest.approx(high, abs=1e-4)


def test_wilson_interval_empty_total() -> None:
    assert wilson_interval(0, 0) is None


def test_wilson_interval_rejects_hits_above_total() -> None:
    with pytest.raises(ValueError, match="between 0 and total"):
        wilson_interval(3, 2)


def test_proportion_format() -> None:
    assert Proportion(3, 12).format() == "25% (3/12, 9%-53%)"
    assert Proportion(0, 0).format() == "n/a (0 cases)"
    assert Proportion(0, 0).value is None


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [(9, 3, 598 / 4096), (3, 9, 598 / 4096), (0, 5, 2 / 32), (5, 5, 1.0), (0, 0, 1.0)],
    ids=["more-first", "more-second", "one-sided", "even", "no-pairs"],
)
def test_sign_test_known_values(first: int, second: int, expected: float) -> None:
    assert sign_test_p(first, second) == pytest.approx(expected)


def test_sign_test_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        sign_test_p(-1, 2)
