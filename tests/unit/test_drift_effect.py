"""The minimum-effect rule and small-sample validity, for every statistic.

Each rule in the statistics module docstring has a test here: a significant shift below
minEffect does not fire, one whose interval clears minEffect does, the interval covers the
true distance, and windows too sparse for chi-square are Inconclusive for PSI and JS too.
"""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.decision_inputs import deployment
from rollforward.api import DriftStatistic, DriftVerdict
from rollforward.drift.check import criteria as drift_criteria
from rollforward.drift.statistics import (
    BaselineCounts,
    BaselineProportions,
    DriftCriteria,
    EffectSize,
    evaluate_drift,
)

TRAINING = BaselineProportions(proportions={"pos": 0.3, "neg": 0.7})
TRAINING_WINDOW = {"pos": 0.3 * 120_000, "neg": 0.7 * 120_000}
"""A reference window of 120,000 predictions with the training shares."""
TEN = {
    f"c{i}": p for i, p in enumerate((0.25, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06, 0.04, 0.03, 0.03))
}


def criteria(statistic: DriftStatistic, **overrides: float) -> DriftCriteria:
    return DriftCriteria(statistic=statistic, alpha=0.01, **overrides)


def effect_of(report_effect: EffectSize | None) -> EffectSize:
    assert report_effect is not None
    return report_effect


@pytest.mark.parametrize("baseline_kind", ["training", "window"])
@pytest.mark.parametrize("statistic", list(DriftStatistic))
def test_a_significant_shift_below_the_minimum_effect_does_not_fire(
    statistic: DriftStatistic, baseline_kind: str
) -> None:
    # 200 predictions/s for 10 minutes, positive rate 30% -> 31.5%: p < 1e-10, 1.5 points.
    n = 120_000
    current = {"pos": 0.315 * n, "neg": 0.685 * n}
    baseline = TRAINING if baseline_kind == "training" else BaselineCounts(counts=TRAINING_WINDOW)
    # PSI/JS thresholds set tiny so that only the effect gate can stop them.
    loose = {"threshold": 1e-6} if statistic is not DriftStatistic.CHI_SQUARE else {}
    gated = evaluate_drift(current, baseline, criteria(statistic, **loose))
    alone = evaluate_drift(current, baseline, criteria(statistic, min_effect=0.0, **loose))

    segment = gated.segments[0]
    assert segment.p_value is not None and segment.p_value < 1e-10
    assert alone.verdict is DriftVerdict.DRIFT
    assert gated.verdict is DriftVerdict.NO_DRIFT
    assert "too small to matter" in gated.reason
    effect = effect_of(segment.effect)
    assert effect.estimate == pytest.approx(0.015)
    assert effect.lower < 0.03 <= effect.minimum + 1e-12


@pytest.mark.parametrize("statistic", list(DriftStatistic))
def test_a_shift_whose_interval_clears_the_minimum_fires(statistic: DriftStatistic) -> None:
    n = 3_000  # 5 predictions/s for 10 minutes, 30% -> 40%
    loose = {"threshold": 1e-6} if statistic is not DriftStatistic.CHI_SQUARE else {}
    current = {"pos": 0.4 * n, "neg": 0.6 * n}
    report = evaluate_drift(current, TRAINING, criteria(statistic, **loose))
    effect = effect_of(report.segments[0].effect)
    assert report.verdict is DriftVerdict.DRIFT
    assert effect.estimate == pytest.approx(0.1)
    assert 0.03 <= effect.lower < 0.1 < effect.upper
    assert effect.confidence == pytest.approx(0.99)
    assert "TVD 10.0 pt (99% CI" in report.reason


@pytest.mark.parametrize("statistic", list(DriftStatistic))
def test_a_significant_move_among_ten_classes_below_the_minimum_does_not_fire(
    statistic: DriftStatistic,
) -> None:
    # 2 points moved from the largest class to a rare one, over 200,000 predictions.
    n = 200_000
    shares = dict(TEN)
    shares["c0"] -= 0.02
    shares["c9"] += 0.02
    current = {label: share * n for label, share in shares.items()}
    loose = {"threshold": 1e-6} if statistic is not DriftStatistic.CHI_SQUARE else {}
    baseline = BaselineProportions(proportions=TEN)
    alone = evaluate_drift(current, baseline, criteria(statistic, min_effect=0.0, **loose))
    gated = evaluate_drift(current, baseline, criteria(statistic, **loose))
    assert alone.verdict is DriftVerdict.DRIFT
    assert gated.verdict is DriftVerdict.NO_DRIFT
    assert effect_of(gated.segments[0].effect).estimate == pytest.approx(0.02)


def test_the_point_estimate_above_the_minimum_is_not_enough() -> None:
    # 5 points at n=600: the estimate clears 3 points, its lower bound does not.
    n = 600
    report = evaluate_drift(
        {"pos": 0.35 * n, "neg": 0.65 * n}, TRAINING, criteria(DriftStatistic.CHI_SQUARE)
    )
    effect = effect_of(report.segments[0].effect)
    assert effect.estimate > 0.03 > effect.lower
    assert report.verdict is DriftVerdict.NO_DRIFT


def test_binary_interval_is_the_wald_interval_of_the_positive_rate() -> None:
    n = 1_000
    report = evaluate_drift(
        {"pos": 400.0, "neg": 600.0}, TRAINING, criteria(DriftStatistic.CHI_SQUARE)
    )
    effect = effect_of(report.segments[0].effect)
    share = 401 / 1002
    half = 2.5758293035489 * np.sqrt(share * (1 - share) / n)
    assert effect.lower == pytest.approx(0.1 - half)
    assert effect.upper == pytest.approx(0.1 + half)


def test_two_windows_add_the_baseline_window_variance() -> None:
    n = m = 2_000
    known = evaluate_drift(
        {"pos": 800.0, "neg": 1200.0}, TRAINING, criteria(DriftStatistic.CHI_SQUARE)
    )
    window = evaluate_drift(
        {"pos": 800.0, "neg": 1200.0},
        BaselineCounts(counts={"pos": 0.3 * m, "neg": 0.7 * m}),
        criteria(DriftStatistic.CHI_SQUARE),
    )
    assert n == m
    known_effect, window_effect = (
        effect_of(known.segments[0].effect),
        effect_of(window.segments[0].effect),
    )
    assert known_effect.estimate == pytest.approx(window_effect.estimate)
    assert window_effect.lower < known_effect.lower


@pytest.mark.parametrize("baseline_kind", ["training", "window"])
def test_the_interval_covers_the_true_distance(baseline_kind: str) -> None:
    """Simultaneous coverage holds for 10 skewed classes: the lower end is at most the truth."""
    rng = np.random.default_rng(7)
    labels = list(TEN)
    truth = np.array([TEN[label] for label in labels])
    shifted = truth.copy()
    shifted[0] -= 0.04
    shifted[-1] += 0.04  # a 4-point move from the largest class to a rare one
    true_tvd = 0.04
    misses = 0
    trials = 300
    for _ in range(trials):
        counts = rng.multinomial(2_000, shifted)
        if baseline_kind == "training":
            baseline: BaselineProportions | BaselineCounts = BaselineProportions(proportions=TEN)
        else:
            reference = rng.multinomial(2_000, truth)
            baseline = BaselineCounts(counts=dict(zip(labels, map(float, reference), strict=True)))
        report = evaluate_drift(
            dict(zip(labels, map(float, counts), strict=True)),
            baseline,
            DriftCriteria(alpha=0.05, min_effect=0.0),
        )
        effect = effect_of(report.segments[0].effect)
        misses += not (effect.lower <= true_tvd <= effect.upper)
    # Bonferroni makes the interval conservative: well under 5% misses (binomial sd ~1.3%).
    assert misses / trials <= 0.05


@pytest.mark.parametrize("statistic", list(DriftStatistic))
@pytest.mark.parametrize(
    ("current", "baseline"),
    [
        # 10 classes, 9 predictions: no two cells reach an expected count of 5.
        ({"c0": 4.0, "c1": 2.0, "c9": 3.0}, BaselineProportions(proportions=TEN)),
        # A baseline concentrated on one label: the rare label's cell never reaches 5.
        ({"a": 95.0, "b": 5.0}, BaselineProportions(proportions={"a": 0.99, "b": 0.01})),
        # Two small windows of a skewed pair.
        ({"a": 18.0, "b": 2.0}, BaselineCounts(counts={"a": 19.0, "b": 1.0})),
    ],
)
def test_sparse_windows_are_inconclusive_for_every_statistic(
    statistic: DriftStatistic,
    current: dict[str, float],
    baseline: BaselineProportions | BaselineCounts,
) -> None:
    report = evaluate_drift(
        current,
        baseline,
        DriftCriteria(statistic=statistic, min_samples=1, min_baseline_samples=1),
    )
    assert report.verdict is DriftVerdict.INCONCLUSIVE
    assert "too few predictions for a valid chi-square test" in report.reason
    assert report.segments[0].p_value is None


def test_min_effect_zero_is_the_test_alone() -> None:
    n = 500_000
    current = {"pos": 0.305 * n, "neg": 0.695 * n}
    report = evaluate_drift(current, TRAINING, criteria(DriftStatistic.CHI_SQUARE, min_effect=0.0))
    assert report.verdict is DriftVerdict.DRIFT
    assert "minEffect 0.0 pt" in report.reason


def test_at_the_crd_defaults_5_per_second_tells_a_step_from_a_wobble() -> None:
    """The two claims of `make bench-drift` at 5 predictions/s, one window each.

    The default window holds 1,500 predictions at 5/s. A window wholly after a +10 point
    step fires even when it comes out 3 standard errors low; the peak of a +/-1.5 point
    wobble does not fire even when it comes out 3 standard errors high.
    """
    rules = drift_criteria(deployment())
    n = 1_500
    assert rules.alpha == 0.01 and rules.min_effect == 0.03
    low_step = 0.40 - 3 * np.sqrt(0.4 * 0.6 / n)
    high_wobble = 0.315 + 3 * np.sqrt(0.315 * 0.685 / n)
    step = evaluate_drift({"pos": low_step * n, "neg": (1 - low_step) * n}, TRAINING, rules)
    wobble = evaluate_drift({"pos": high_wobble * n, "neg": (1 - high_wobble) * n}, TRAINING, rules)
    assert step.verdict is DriftVerdict.DRIFT
    assert wobble.verdict is DriftVerdict.NO_DRIFT
    assert wobble.segments[0].p_value is not None and wobble.segments[0].p_value < 0.01
