"""Alarms calibrated to time: the expected time between false drift episodes. Pure, stdlib only.

One check's false-alarm rate says little on its own. What a user lives with is how often
`Drifted` turns True on noise, and that depends on the cadence too:

* Checks run every `interval` over the last `window`. When interval < window, the windows
  of checks k intervals apart share a fraction rho_k = max(0, 1 - k interval / window) of
  their predictions, so their statistics are correlated: a check that fired on noise makes
  the next one likelier to fire, and `consecutiveBreaches` K buys far less than q^K.
  Treating checks as independent overstates the time between false episodes more than
  tenfold (10m windows every 5m, rho_1 = 0.5, K = 3, q = 0.01: about 108 days, not the 9.6
  years that q^K every 5 minutes suggests). The CRD defaults (5m windows every 5m, K = 2)
  do not overlap: q^2 (1 - q) per check, about 35 days at q = 0.01 for the test alone.
* An episode starts at a check that fires after one that did not, followed by K - 1 more
  firing checks. Its rate per check is P(clean, fire, ..., fire).

The approximation (simulation-free; `make bench-drift` checks it against the real checks):

* The check's standardized statistic is Gaussian (a sum of many predictions) with the
  window-overlap correlations above, and a check fires when it lands beyond the two-sided
  quantile that gives the per-check rate q.
* The fire / no-fire sequence is treated as a second-order Markov chain, with its pair and
  triple probabilities taken from the bivariate and trivariate normal (one- and
  two-dimensional Simpson integrals). A first-order chain is not enough: given two firing
  checks the shared half-window is already "explained", so a third fires less often than
  after one (first order predicts 39 days where the truth is 108 at the defaults). Second
  order agrees with a Gaussian simulation of sliding windows within a few percent for
  interval / window in {1/3, 1/2, 1}, K in {2, 3}; with rho = 0 it is exact.
* Recovery (K clean checks) is ignored: false episodes are rare, so the time spent drifted
  is negligible against the time between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

_STANDARD = NormalDist()
_SPAN = 10.0
"""Integrate tails this many standard deviations past the cut; the rest is below 1e-22."""
_OUTER_STEPS = 200
_INNER_STEPS = 64
_DAY_SECONDS = 86_400.0
NEVER_DAYS = 1e9
"""Reported instead of infinity (status is JSON): no false episode in a million years."""


def window_overlap(window_seconds: float, interval_seconds: float, lag: int = 1) -> float:
    """rho_lag: the share of a window's predictions that the check `lag` intervals later shares."""
    if window_seconds <= 0 or interval_seconds <= 0:
        raise ValueError("window and interval must be positive")
    return max(0.0, 1.0 - lag * interval_seconds / window_seconds)


def _simpson(function: Callable[[float], float], low: float, high: float, steps: int) -> float:
    if high <= low:
        return 0.0
    width = (high - low) / steps
    total = function(low) + function(high)
    for i in range(1, steps):
        total += (4.0 if i % 2 else 2.0) * function(low + i * width)
    return total * width / 3.0


def _outside(mean: float, spread: float, cut: float) -> float:
    """P(|Y| > cut) for Y ~ N(mean, spread^2)."""
    return _STANDARD.cdf((-cut - mean) / spread) + _STANDARD.cdf((mean - cut) / spread)


def _pair_tail(means: tuple[float, float], sd: float, rho: float, cut: float, steps: int) -> float:
    """P(|A| > cut and |B| > cut), A and B normal with these means, sd and correlation."""
    mean_a, mean_b = means
    spread = sd * math.sqrt(max(1e-12, 1.0 - rho * rho))

    def density(a: float) -> float:
        given = mean_b + rho * (a - mean_a)
        return _STANDARD.pdf((a - mean_a) / sd) / sd * _outside(given, spread, cut)

    low, high = mean_a - _SPAN * sd, mean_a + _SPAN * sd
    return _simpson(density, low, min(high, -cut), steps) + _simpson(
        density, max(low, cut), high, steps
    )


def _triple_tail(cut: float, rho1: float, rho2: float) -> float:
    """P(|Z0|, |Z1|, |Z2| > cut); Z1 has correlation rho1 with each neighbour, Z0 and Z2 rho2."""
    # Given Z1 = x, (Z0, Z2) are normal with mean rho1 x, variance 1 - rho1^2 and this correlation.
    sd = math.sqrt(1.0 - rho1 * rho1)
    partial = (rho2 - rho1 * rho1) / (1.0 - rho1 * rho1)

    def density(x: float) -> float:
        mean = rho1 * x
        return _STANDARD.pdf(x) * _pair_tail((mean, mean), sd, partial, cut, _INNER_STEPS)

    # Symmetric in x -> -x, so integrate one tail twice.
    return 2.0 * _simpson(density, cut, cut + _SPAN, _OUTER_STEPS)


@lru_cache(maxsize=256)
def false_episodes_per_check(
    per_check_rate: float, window_seconds: float, interval_seconds: float, breaches: int
) -> float:
    """The rate, per check, at which `breaches` firing checks in a row start a false episode."""
    if breaches < 1:
        raise ValueError(f"consecutive breaches must be at least 1, got {breaches}")
    if not 0.0 <= per_check_rate < 1.0:
        raise ValueError(f"per-check rate must be in [0, 1), got {per_check_rate}")
    q = per_check_rate
    if q == 0.0:
        return 0.0
    rho1 = window_overlap(window_seconds, interval_seconds, 1)
    rho2 = window_overlap(window_seconds, interval_seconds, 2)
    cut = _STANDARD.inv_cdf(1.0 - q / 2.0)
    pair = _pair_tail((0.0, 0.0), 1.0, rho1, cut, _OUTER_STEPS) if rho1 > 0 else q * q
    if breaches == 1:
        return max(0.0, q - pair)
    triple = _triple_tail(cut, rho1, rho2) if rho1 > 0 else q**3
    # Clamp what integration error could push past the bounds of a probability.
    triple = min(triple, pair)
    persistence = triple / pair if pair > 0 else 0.0
    return max(0.0, pair - triple) * persistence ** (breaches - 2)


def mean_days_between_false_episodes(
    per_check_rate: float, window_seconds: float, interval_seconds: float, breaches: int
) -> float:
    """Expected days between false drift episodes at this cadence (NEVER_DAYS at most)."""
    rate = false_episodes_per_check(per_check_rate, window_seconds, interval_seconds, breaches)
    if rate <= 0.0:
        return NEVER_DAYS
    return min(NEVER_DAYS, interval_seconds / rate / _DAY_SECONDS)
