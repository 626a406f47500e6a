"""The verdict of an A/B experiment on a realized outcome rate: a sequential test. Pure.

The question: does the challenger's outcome rate (the share of labelled predictions whose
true label is the positive one, e.g. "upgraded") differ from the champion's by an amount
worth acting on? The operator looks after every interval, on the counts since the
experiment started counting (rollforward.quality). Decisions a naive version gets wrong:

- **Repeated looks.** A z-test checked after every interval declares a false winner far more
  often than its alpha (with 100 looks, several times alpha). This is the mixture sequential
  probability ratio test (mSPRT, Johari et al. 2017, the test behind Optimizely's Stats
  Engine) on the difference of the two rates: the likelihood ratio of a N(0, tau^2) mixture
  of effects against no effect. Under no difference it is a nonnegative martingale, so the
  chance that it *ever* reaches 1/alpha is at most alpha (Ville's inequality), however often
  it is looked at. Its inversion is an always-valid confidence interval for the effect.
- **The mixture's spread.** tau sets which effects the test finds fastest; it is the
  minimum effect worth acting on, so effects of that size are found soonest.
- **Small samples.** The test uses the normal approximation of each rate's estimate; below
  `min_samples` labelled predictions per variant it gives no verdict at all (Running), and
  the rates in the variance get half a success and half a failure added, so a variant with
  no positive outcome yet does not look infinitely precise.
- **Three answers, not two.** ChallengerBetter or ChampionBetter when the interval excludes
  no difference; NoDifference when the interval lies inside (-minEffect, +minEffect): any
  difference left is smaller than worth acting on. Both errors are bounded by alpha: a false
  winner needs the interval to miss the true effect of 0, and a false NoDifference needs it
  to miss an effect of at least minEffect.
- **Missing data is not evidence.** No counts (a failed or empty query) or counts that do
  not add up are Inconclusive for this look; the experiment goes on. Only when maxDuration
  passes without a verdict does it end Inconclusive.

It assumes outcomes are independent given each variant's rate, and that the split assigns
users to variants at random (sticky hashing of the user id does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

SMOOTHING = 0.5
"""Pseudo-successes and pseudo-failures added to each rate inside the variance only."""


class ExperimentVerdict(StrEnum):
    """What the experiment concluded (status.experiment.verdict)."""

    RUNNING = "Running"
    """No verdict yet: keep both variants serving and look again next interval."""
    CHALLENGER_BETTER = "ChallengerBetter"
    """The challenger's rate is better than the champion's, with confidence 1 - alpha."""
    NO_DIFFERENCE = "NoDifference"
    """Any difference is smaller than minEffect, with confidence 1 - alpha."""
    CHAMPION_BETTER = "ChampionBetter"
    """The champion's rate is better than the challenger's, with confidence 1 - alpha."""
    INCONCLUSIVE = "Inconclusive"
    """No data to judge this look, or maxDuration passed without a verdict."""


FINAL_VERDICTS = frozenset(
    {
        ExperimentVerdict.CHALLENGER_BETTER,
        ExperimentVerdict.NO_DIFFERENCE,
        ExperimentVerdict.CHAMPION_BETTER,
    }
)
"""Verdicts that end the experiment; Inconclusive ends it only at maxDuration."""


@dataclass(frozen=True)
class ArmCounts:
    """Cumulative labelled predictions of one variant, and how many had the positive label."""

    trials: int
    successes: int

    @property
    def valid(self) -> bool:
        return 0 <= self.successes <= self.trials

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0

    def smoothed_variance(self) -> float:
        p = (self.successes + SMOOTHING) / (self.trials + 2 * SMOOTHING)
        return p * (1.0 - p) / self.trials


@dataclass(frozen=True)
class ExperimentCriteria:
    """The spec's rules for one experiment."""

    min_effect: float
    """Smallest difference of rates worth acting on (0.02 = 2 points); also the mixture's tau."""
    alpha: float
    """Bound on the chance of a false winner over the whole experiment."""
    min_samples: int = 100
    """Labelled predictions each variant needs before any verdict."""
    higher_is_better: bool = True
    """Whether a higher outcome rate is the better one."""


@dataclass(frozen=True)
class ExperimentLook:
    """One look at the counts: the verdict, and the effect with its always-valid interval."""

    verdict: ExperimentVerdict
    effect: float | None
    """Challenger rate minus champion rate (not flipped by higher_is_better)."""
    lower: float | None
    upper: float | None
    log_evidence: float
    """log of the mixture likelihood ratio against no difference; a winner needs
    log(1/alpha)."""
    message: str

    @property
    def final(self) -> bool:
        return self.verdict in FINAL_VERDICTS


def log_mixture_ratio(effect: float, variance: float, tau: float) -> float:
    """log of the mSPRT statistic for an observed effect with this variance."""
    spread = variance + tau * tau
    return 0.5 * math.log(variance / spread) + tau * tau * effect * effect / (2 * variance * spread)


def half_width(variance: float, tau: float, alpha: float) -> float:
    """Half the always-valid (1 - alpha) interval: where the mixture ratio stays below 1/alpha."""
    spread = variance + tau * tau
    radius = math.log(1.0 / alpha) + 0.5 * math.log(spread / variance)
    return math.sqrt(2.0 * variance * spread / (tau * tau) * radius)


def _classify(lower: float, upper: float, criteria: ExperimentCriteria) -> ExperimentVerdict:
    """Verdict from the interval of (challenger - champion); direction applied here."""
    better_low, better_high = (lower, upper) if criteria.higher_is_better else (-upper, -lower)
    if better_low > -criteria.min_effect and better_high < criteria.min_effect:
        return ExperimentVerdict.NO_DIFFERENCE
    if better_low > 0:
        return ExperimentVerdict.CHALLENGER_BETTER
    if better_high < 0:
        return ExperimentVerdict.CHAMPION_BETTER
    return ExperimentVerdict.RUNNING


def _no_data(champion: ArmCounts | None, challenger: ArmCounts | None) -> str:
    if champion is None or challenger is None:
        return "no outcome counts (the query failed or found no series)"
    if not (champion.valid and challenger.valid):
        return "outcome counts that do not add up"
    return ""


def judge(
    champion: ArmCounts | None,
    challenger: ArmCounts | None,
    criteria: ExperimentCriteria,
    *,
    expired: bool = False,
) -> ExperimentLook:
    """One look at the cumulative counts. `expired`: maxDuration has passed."""
    threshold = math.log(1.0 / criteria.alpha)
    missing = _no_data(champion, challenger)
    if missing or champion is None or challenger is None:
        return ExperimentLook(ExperimentVerdict.INCONCLUSIVE, None, None, None, 0.0, missing)
    rates = (
        f"challenger {challenger.successes}/{challenger.trials} vs champion "
        f"{champion.successes}/{champion.trials}"
    )
    if min(champion.trials, challenger.trials) < criteria.min_samples:
        verdict = ExperimentVerdict.INCONCLUSIVE if expired else ExperimentVerdict.RUNNING
        message = f"{rates}: fewer than {criteria.min_samples} labelled predictions per variant"
        return ExperimentLook(verdict, None, None, None, 0.0, message)
    effect = challenger.rate - champion.rate
    variance = challenger.smoothed_variance() + champion.smoothed_variance()
    tau = criteria.min_effect
    width = half_width(variance, tau, criteria.alpha)
    lower, upper = effect - width, effect + width
    verdict = _classify(lower, upper, criteria)
    if verdict is ExperimentVerdict.RUNNING and expired:
        verdict = ExperimentVerdict.INCONCLUSIVE
    evidence = log_mixture_ratio(effect, variance, tau)
    message = (
        f"{rates}: effect {effect * 100:+.2f} pts, {100 * (1 - criteria.alpha):g}% interval "
        f"[{lower * 100:+.2f}, {upper * 100:+.2f}] pts (minEffect {criteria.min_effect * 100:g})"
        f"; evidence {math.exp(min(evidence, 700.0)):.3g} (a winner needs "
        f"{math.exp(threshold):.3g})"
    )
    return ExperimentLook(verdict, effect, lower, upper, evidence, message)


__all__ = [
    "FINAL_VERDICTS",
    "ArmCounts",
    "ExperimentCriteria",
    "ExperimentLook",
    "ExperimentVerdict",
    "half_width",
    "judge",
    "log_mixture_ratio",
]
