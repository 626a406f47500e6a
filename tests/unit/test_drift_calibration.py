"""Expected time between false drift episodes: exact cases and a Gaussian simulation."""

from __future__ import annotations

import numpy as np
import pytest

from rollforward.drift.calibration import (
    NEVER_DAYS,
    false_episodes_per_check,
    mean_days_between_false_episodes,
    window_overlap,
)


def test_overlap_of_successive_windows() -> None:
    assert window_overlap(600, 300) == pytest.approx(0.5)
    assert window_overlap(600, 300, lag=2) == 0.0
    assert window_overlap(600, 900) == 0.0
    with pytest.raises(ValueError):
        window_overlap(0, 300)


@pytest.mark.parametrize(("q", "breaches"), [(0.01, 1), (0.05, 2), (0.01, 3)])
def test_disjoint_windows_are_independent_checks(q: float, breaches: int) -> None:
    # One clean check, then K firing ones: (1 - q) q^K per check.
    rate = false_episodes_per_check(q, 600, 600, breaches)
    assert rate == pytest.approx((1 - q) * q**breaches)


def test_overlapping_windows_make_false_episodes_far_more_frequent() -> None:
    independent = mean_days_between_false_episodes(0.01, 600, 600, 3)
    overlapping = mean_days_between_false_episodes(0.01, 600, 300, 3)
    assert independent > 2_000  # ~9,500 days
    assert 80 < overlapping < 140  # ~108 days at the CRD defaults
    assert mean_days_between_false_episodes(0.01, 600, 200, 3) < overlapping


def test_more_breaches_and_lower_rates_mean_rarer_episodes() -> None:
    days = [mean_days_between_false_episodes(0.01, 600, 300, k) for k in (1, 2, 3, 4)]
    assert days == sorted(days)
    assert mean_days_between_false_episodes(0.001, 600, 300, 3) > days[2]
    assert mean_days_between_false_episodes(0.0, 600, 300, 3) == NEVER_DAYS
    assert mean_days_between_false_episodes(1e-15, 600, 300, 3) == NEVER_DAYS


@pytest.mark.parametrize(
    ("q", "interval", "breaches"),
    [(0.05, 300, 2), (0.05, 300, 3), (0.05, 200, 3), (0.1, 120, 3)],
)
def test_agrees_with_a_simulation_of_sliding_windows(
    q: float, interval: int, breaches: int
) -> None:
    """Sliding 600 s windows over white noise at 20 s resolution, checked every interval."""
    rng = np.random.default_rng(11)
    step, window = 20, 600
    days = 1_000
    noise = rng.standard_normal(days * 86_400 // step)
    sums = np.concatenate([[0.0], np.cumsum(noise)])
    ends = np.arange(window // step, len(noise) + 1, interval // step)
    z = (sums[ends] - sums[ends - window // step]) / np.sqrt(window // step)
    cut = float(np.quantile(np.abs(rng.standard_normal(2_000_000)), 1 - q))
    fires = np.abs(z) > cut
    # An episode starts where a clean check is followed by `breaches` firing ones.
    run = np.ones(len(fires) - breaches, dtype=bool)
    for k in range(1, breaches + 1):
        run &= fires[k : len(fires) - breaches + k]
    starts = int(np.sum(run & ~fires[: len(fires) - breaches]))
    simulated = days / starts
    predicted = mean_days_between_false_episodes(q, window, interval, breaches)
    assert starts > 150
    assert predicted == pytest.approx(simulated, rel=0.2)
