"""The statistics of a campaign's report, as plain functions of numbers (tested by simulation in
``tests/test_campaign_stats.py``: the intervals cover a known true effect about 95% of the time,
and a campaign with no effect is called positive about 2.5% of the time).

- The difference of two conversion rates, treated minus holdout, with Newcombe's hybrid score
  interval (his method 10: from each group's Wilson interval), which keeps its coverage when
  rates are small or groups unequal, where the textbook Wald interval does not.
- The difference of two means (revenue per member), with a percentile bootstrap interval:
  revenue is skewed (most members buy nothing in the window), so no normal approximation.
- The minimum detectable effect of a difference of rates at a given size (two-sided 5%, power 80%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
Z80 = 0.8416212335729143


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "likely positive"
        if self.high < 0:
            return "likely negative"
        return "no measurable effect yet"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(x1: int, n1: int, x0: int, n0: int) -> Interval:
    """Treated (x1 of n1) minus holdout (x0 of n0), Newcombe's hybrid score 95% interval."""
    if not n1 or not n0:
        return Interval(0.0, -1.0, 1.0)
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Interval(d, low, high)


def _resampled_means(values: np.ndarray, resamples: int, rng) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples (the Poisson bootstrap: each member weighs a
    Poisson(1) count). Members with the same value are drawn together (a value held by c members
    weighs Poisson(c)), so 100,000 members of whom most bought nothing cost what their few
    distinct values cost."""
    unique, counts = np.unique(values, return_counts=True)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // max(1, len(unique)))
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        weights = rng.poisson(counts, size=(size, len(unique)))
        totals = weights.sum(axis=1)
        means[start:start + size] = (weights @ unique) / np.maximum(totals, 1)
    return means


def mean_difference(treated, holdout, *, resamples: int = 2000, seed: int = 0) -> Interval:
    """Mean of ``treated`` minus mean of ``holdout``, percentile bootstrap 95% interval."""
    a, b = np.asarray(treated, dtype=float), np.asarray(holdout, dtype=float)
    if not len(a) or not len(b):
        return Interval(0.0, -math.inf, math.inf)
    rng = np.random.default_rng(seed)
    diffs = _resampled_means(a, resamples, rng) - _resampled_means(b, resamples, rng)
    low, high = np.quantile(diffs, [0.025, 0.975])
    return Interval(float(a.mean() - b.mean()), float(low), float(high))


def minimum_detectable_rate_effect(baseline: float, n1: int, n0: int) -> float | None:
    """The smallest true rise of the rate that the report's own interval would call "likely
    positive" 80% of the time: the effect at which the interval's lower half-width (at the expected
    counts) plus 0.84 standard errors is reached, found by a few fixed-point steps."""
    if not n1 or not n0:
        return None
    p0 = min(max(baseline, 1e-6), 1 - 1e-6)
    delta = (Z95 + Z80) * math.sqrt(p0 * (1 - p0) * (1 / n1 + 1 / n0))
    for _ in range(30):
        p1 = min(p0 + delta, 1 - 1e-9)
        l1, _ = wilson(p1 * n1, n1)
        _, u0 = wilson(p0 * n0, n0)
        half = math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
        delta = half + Z80 * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return min(delta, 1 - p0)
