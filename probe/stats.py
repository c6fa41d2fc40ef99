"""Binomial proportions with 95 % Wilson score intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959964  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Proportion:
    """`hits` out of `total`, with its Wilson score interval; the value is None when total is 0."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.hits, self.total)

    def format(self) -> str:
        if not self.total:
            return "n/a (0 cases)"
        low, high = self.interval or (0.0, 0.0)
        return f"{self.value:.0%} ({self.hits}/{self.total}, {low:.0%}-{high:.0%})"

    def to_json(self) -> dict[str, object]:
        interval = self.interval
        return {"hits": self.hits, "total": self.total, "value": self.value, "wilson_95": list(interval) if interval else None}


def wilson_interval(hits: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """Return the Wilson score interval of hits/total, or None when total is 0."""
    if total <= 0:
        return None
    if not 0 <= hits <= total:
        raise ValueError(f"hits must be between 0 and total ({total}), got {hits}")
    p = hits / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def sign_test_p(first: int, second: int) -> float:
    """Return the exact two-sided sign-test p-value for `first` against `second` discordant pairs.

    This is McNemar's exact test: under no difference each discordant pair is a fair coin.
    """
    if first < 0 or second < 0:
        raise ValueError(f"counts must not be negative, got {first} and {second}")
    total = first + second
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, k) for k in range(min(first, second) + 1)) / 2**total
    return min(1.0, 2 * tail)
