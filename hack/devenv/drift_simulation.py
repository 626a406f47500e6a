"""Simulations of the drift checks, for the unit tests and the bench (needs numpy).

Both simulations run the real `evaluate_drift` and `next_state` on synthetic label counts:

* `simulate_false_alarms` draws windows from the baseline distribution itself, so every
  Drift verdict is a false alarm.
* `simulate_shift` streams predictions at a fixed rate, shifts the positive rate at a given
  second, and runs periodic checks over a sliding window through the hysteresis.

Everything is driven by a seeded `numpy.random.Generator`, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rollforward.api import DriftStatistic, DriftVerdict
from rollforward.drift.hysteresis import DriftTracking, HysteresisPolicy, next_state
from rollforward.drift.statistics import (
    Baseline,
    BaselineCounts,
    BaselineProportions,
    DriftCriteria,
    evaluate_drift,
)

BINARY_MODEL: Mapping[str, float] = {"negative": 0.7, "positive": 0.3}
"""A binary classifier predicting the positive class 30% of the time."""

TEN_CLASS_MODEL: Mapping[str, float] = {
    f"class-{i}": p
    for i, p in enumerate((0.25, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06, 0.04, 0.03, 0.03))
}
"""A 10-class classifier with a skewed distribution, so small windows have rare labels."""

FIXED_PSI_CUTOFF = 0.1
"""The common rule of thumb the noise floor is compared with: PSI > 0.1, whatever n is."""

BaselineKind = Literal["training", "reference"]


@dataclass(frozen=True)
class NoDriftScenario:
    """Windows drawn from the baseline distribution itself."""

    model: str
    proportions: Mapping[str, float]
    window: int
    """Predictions per current window (and per reference window)."""
    baseline: BaselineKind
    """`training`: known proportions (one-sample); `reference`: a window of equal size."""


@dataclass(frozen=True)
class MethodTally:
    """How one decision rule fared over the simulated checks."""

    checks: int
    alarms: int
    inconclusive: int

    @property
    def tested(self) -> int:
        return self.checks - self.inconclusive

    @property
    def false_alarm_rate(self) -> float:
        """Alarms among the checks that were tested (Inconclusive checks decide nothing)."""
        return self.alarms / self.tested if self.tested else 0.0


@dataclass(frozen=True)
class FalseAlarmRates:
    """Every rule's tally for one scenario."""

    scenario: NoDriftScenario
    chi_square: MethodTally
    floored_psi: MethodTally
    floored_js: MethodTally
    fixed_psi: MethodTally
    """PSI > 0.1 alone: the same PSI score, without noise floor or p-value."""


def simulation_criteria(statistic: DriftStatistic, alpha: float = 0.05) -> DriftCriteria:
    """Default criteria, except that windows of 20 are allowed so small n is exercised."""
    # min_effect 0: these simulations measure the test alone (bench/drift_episodes.py the gate).
    return DriftCriteria(
        statistic=statistic,
        alpha=alpha,
        min_samples=20,
        min_baseline_samples=20,
        min_effect=0.0,
    )


def no_drift_scenarios(
    windows: tuple[int, ...] = (20, 100, 1000),
) -> list[NoDriftScenario]:
    """The binary and 10-class models, at each window size, against both baseline kinds."""
    return [
        NoDriftScenario(model=model, proportions=proportions, window=window, baseline=kind)
        for model, proportions in (("binary", BINARY_MODEL), ("10-class", TEN_CLASS_MODEL))
        for window in windows
        for kind in ("training", "reference")
    ]


def _counts(labels: list[str], row: np.ndarray) -> dict[str, float]:
    return {label: float(count) for label, count in zip(labels, row, strict=True)}


def simulate_false_alarms(
    scenario: NoDriftScenario, checks: int, seed: int, alpha: float = 0.05
) -> FalseAlarmRates:
    """Run `checks` independent no-drift checks and count the alarms of each rule."""
    rng = np.random.default_rng(seed)
    labels = list(scenario.proportions)
    probabilities = np.array([scenario.proportions[label] for label in labels])
    current = rng.multinomial(scenario.window, probabilities, size=checks)
    reference = rng.multinomial(scenario.window, probabilities, size=checks)
    chi = simulation_criteria(DriftStatistic.CHI_SQUARE, alpha)
    psi = simulation_criteria(DriftStatistic.PSI, alpha)
    js = simulation_criteria(DriftStatistic.JENSEN_SHANNON, alpha)
    tallies = {name: [0, 0] for name in ("chi", "psi", "js", "fixed")}
    for i in range(checks):
        baseline: Baseline
        if scenario.baseline == "training":
            baseline = BaselineProportions(proportions=dict(scenario.proportions))
        else:
            baseline = BaselineCounts(counts=_counts(labels, reference[i]))
        window = _counts(labels, current[i])
        for name, criteria in (("chi", chi), ("psi", psi), ("js", js)):
            report = evaluate_drift(window, baseline, criteria)
            _tally(tallies[name], report.verdict)
            if name == "psi":
                score = report.segments[0].score
                if score is None:
                    _tally(tallies["fixed"], DriftVerdict.INCONCLUSIVE)
                else:
                    fixed_fires = score > FIXED_PSI_CUTOFF
                    _tally(
                        tallies["fixed"],
                        DriftVerdict.DRIFT if fixed_fires else DriftVerdict.NO_DRIFT,
                    )

    def tally(name: str) -> MethodTally:
        alarms, inconclusive = tallies[name]
        return MethodTally(checks=checks, alarms=alarms, inconclusive=inconclusive)

    return FalseAlarmRates(
        scenario=scenario,
        chi_square=tally("chi"),
        floored_psi=tally("psi"),
        floored_js=tally("js"),
        fixed_psi=tally("fixed"),
    )


def _tally(counter: list[int], verdict: DriftVerdict) -> None:
    if verdict is DriftVerdict.DRIFT:
        counter[0] += 1
    elif verdict is DriftVerdict.INCONCLUSIVE:
        counter[1] += 1


# --- detection delay --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftScenario:
    """A binary model whose positive rate shifts once; times are whole seconds."""

    rate_per_second: int = 20
    positive_before: float = 0.3
    positive_after: float = 0.4
    shift_at: int = 65
    """The first second with the new positive rate; off the check grid on purpose."""
    duration: int = 160
    window: int = 30
    """Seconds of predictions each check looks back over."""
    check_every: int = 10
    min_samples: int = 600
    breaches_to_drift: int = 2
    alpha: float = 0.05

    @property
    def samples_ready_at(self) -> float:
        """When the window first holds `min_samples` predictions made after the shift.

        None of the sliding window's post-shift predictions are lost until it is entirely
        post-shift, so this needs `window * rate_per_second >= min_samples`.
        """
        if self.window * self.rate_per_second < self.min_samples:
            raise ValueError("the window can never hold min_samples post-shift predictions")
        return self.shift_at + self.min_samples / self.rate_per_second

    @property
    def detection_deadline(self) -> float:
        """`samples_ready_at` plus two check intervals (see the detection-delay test)."""
        return self.samples_ready_at + 2 * self.check_every


@dataclass(frozen=True)
class CheckRecord:
    """One periodic check of the shift simulation."""

    at: int
    """The check time: the window covers seconds [at - window, at)."""
    verdict: DriftVerdict
    p_value: float | None
    drifted: bool
    """The Drifted condition after this check."""


@dataclass(frozen=True)
class ShiftRun:
    """The checks of one seeded run, and when Drifted first became True."""

    scenario: ShiftScenario
    checks: tuple[CheckRecord, ...]

    @property
    def drifted_at(self) -> int | None:
        return next((c.at for c in self.checks if c.drifted), None)


def simulate_shift(scenario: ShiftScenario, seed: int) -> ShiftRun:
    """Stream predictions second by second and check on a fixed grid through hysteresis."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(scenario.duration)
    positive_rate = np.where(
        seconds < scenario.shift_at, scenario.positive_before, scenario.positive_after
    )
    positives = rng.binomial(scenario.rate_per_second, positive_rate)
    baseline = BaselineProportions(
        proportions={
            "positive": scenario.positive_before,
            "negative": 1.0 - scenario.positive_before,
        }
    )
    criteria = DriftCriteria(
        alpha=scenario.alpha,
        min_samples=scenario.min_samples,
        min_baseline_samples=scenario.min_samples,
        min_effect=0.0,
    )
    policy = HysteresisPolicy(breaches_to_drift=scenario.breaches_to_drift)
    tracking = DriftTracking()
    records = []
    for at in range(scenario.check_every, scenario.duration + 1, scenario.check_every):
        start = max(0, at - scenario.window)
        positive = int(positives[start:at].sum())
        total = scenario.rate_per_second * (at - start)
        report = evaluate_drift(
            {"positive": float(positive), "negative": float(total - positive)},
            baseline,
            criteria,
        )
        tracking = next_state(tracking, report.verdict, policy)
        records.append(
            CheckRecord(
                at=at,
                verdict=report.verdict,
                p_value=report.segments[0].p_value,
                drifted=tracking.drifted,
            )
        )
    return ShiftRun(scenario=scenario, checks=tuple(records))
