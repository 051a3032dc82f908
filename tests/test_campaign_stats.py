"""The report's statistics, checked by simulation against campaigns whose true effect is known:
thousands of simulated campaigns on a synthetic store, with no effect and with a real one. The 95%
intervals must cover the truth about 95% of the time, and a campaign with no effect must be called
an effect about 5% of the time (positive about 2.5%)."""

import numpy as np
import pytest

from campaigns import stats

TREATED, HOLDOUT = 1800, 200  # a 10% holdout


def simulate_rates(p0: float, effect: float, runs: int, seed: int):
    rng = np.random.default_rng(seed)
    x1 = rng.binomial(TREATED, p0 + effect, size=runs)
    x0 = rng.binomial(HOLDOUT, p0, size=runs)
    return [stats.rate_difference(int(a), TREATED, int(b), HOLDOUT) for a, b in zip(x1, x0, strict=True)]


@pytest.mark.parametrize("p0, effect", [(0.10, 0.0), (0.10, 0.04), (0.03, 0.0), (0.25, 0.08)])
def test_the_conversion_interval_covers_the_true_effect_95_percent_of_the_time(p0, effect):
    intervals = simulate_rates(p0, effect, runs=4000, seed=int(p0 * 1000 + effect * 100))
    coverage = np.mean([i.low <= effect <= i.high for i in intervals])
    assert 0.935 <= coverage <= 0.965, coverage  # 95% +- 3 standard errors of 4,000 runs
    if effect == 0:
        called = np.mean([i.verdict != "no measurable effect yet" for i in intervals])
        positive = np.mean([i.verdict == "likely positive" for i in intervals])
        assert 0.035 <= called <= 0.065, called
        assert 0.012 <= positive <= 0.038, positive
    else:
        assert np.mean([i.verdict == "likely negative" for i in intervals]) < 0.01  # never the wrong way


def test_a_real_effect_is_found_about_as_often_as_the_minimum_detectable_effect_promises():
    p0 = 0.10
    mde = stats.minimum_detectable_rate_effect(p0, TREATED, HOLDOUT)
    assert 0.05 < mde < 0.08  # about 7 points at this size
    found = np.mean([i.verdict == "likely positive" for i in simulate_rates(p0, mde, runs=3000, seed=5)])
    assert 0.75 <= found <= 0.85, found  # the 80% the MDE promises


@pytest.mark.parametrize("effect", [0.0, 4.0])
def test_the_revenue_interval_covers_the_true_difference_95_percent_of_the_time(effect):
    # Revenue per member in the window: most buy nothing; buyers spend a skewed amount (lognormal,
    # mean 40). The offer raises the chance of buying: the true difference of means is known.
    rng = np.random.default_rng(11 if effect else 12)
    amount_mean = 40.0
    p0 = 0.10
    p1 = p0 + effect / amount_mean
    sigma = 0.8
    mu = np.log(amount_mean) - sigma ** 2 / 2
    runs, covered, called = 400, 0, 0
    for run in range(runs):
        treated = rng.binomial(1, p1, TREATED) * rng.lognormal(mu, sigma, TREATED)
        holdout = rng.binomial(1, p0, HOLDOUT) * rng.lognormal(mu, sigma, HOLDOUT)
        interval = stats.mean_difference(treated, holdout, resamples=1000, seed=run)
        covered += interval.low <= effect <= interval.high
        called += interval.verdict != "no measurable effect yet"
    assert 0.92 <= covered / runs <= 0.975, covered / runs
    if effect == 0:
        assert called / runs <= 0.08, called / runs
