"""Drift statistics over predicted-label counts: pure functions, standard library only.

The operator must not need scipy or numpy at run time, so the chi-square distribution is
computed here from the regularized incomplete gamma function (series below a+1, Lentz's
continued fraction above it). The unit tests check it against scipy.

A check compares the label counts of a *current* window with a *baseline*, which is either

* `BaselineProportions`: the training distribution (the bento's `rollforward_baseline_ratio`
  gauge). It is treated as known, so the tests are one-sample goodness-of-fit tests and the
  baseline sample size m is infinite (reported as `None`).
* `BaselineCounts`: the counts of a reference or seasonal window. The tests are two-sample
  tests of homogeneity, and m is that window's total.

Statistics and their firing rules:

* `chiSquare` (default): Pearson's statistic, fires when p < alpha. Its p-value is exact
  (binomial, hypergeometric or full enumeration) where the chi-square approximation is
  known to exceed alpha and enumeration is cheap, and asymptotic for large counts (see
  `_pearson`).
* `psi` and `jensenShannon`: under no drift both behave like a scaled chi-square,
  PSI ~ (1/n + 1/m) X2(B-1) and JS ~ (1/8)(1/n + 1/m) X2(B-1) (JS in nats; 1/m = 0 for a
  known baseline). The expected no-drift value is therefore (B-1)(1/n + 1/m) for PSI and an
  eighth of it for JS. They fire only when the score exceeds BOTH the user's threshold and
  `noiseFloorMultiplier` times that expectation, and the difference is significant. Their
  p-value is Pearson's on the same pooled counts (PSI and JS are that statistic, scaled, to
  second order), exact where chi-square's is, so the correction across segments is the
  same for every statistic. Where Pearson's test cannot run, they are Inconclusive too.
  With the default multiplier (4) and alpha (0.05) the floor alone is already stricter
  than p < alpha asymptotically: the 95% quantile of X2(k) is below 4k for every k >= 1.
* Every statistic, chi-square included, also needs a shift that matters: see "Effect
  size" below.

Effect size (`minEffect`):

* With enough traffic every shift is significant: at 200 predictions/s a 10-minute window
  holds 120,000 predictions, and a 1-point wobble of a 30% positive rate gives p < 1e-10.
  So a check fires only when the shift is significant AND at least `minEffect` large.
* The effect is the total variation distance (TVD) between the current and baseline label
  shares, half the sum of absolute differences, on the unpooled labels. It reads as
  "points of predicted-label share that moved" (for a binary model, the change of the
  positive rate), it is bounded in [0, 1] whatever the class count, and it does not blow
  up on rare labels the way PSI's log ratio does. Default 0.03: 3 points.
* The effect carries a simultaneous (1 - alpha) confidence interval: a Wald interval per
  label share difference (variance from the current share with one pseudo-success and one
  pseudo-failure, plus the baseline window's; a training baseline is treated as known),
  Bonferroni over the B labels (over one difference for two labels, which move together).
  If every label's difference lies in its interval, TVD = sum of positive differences lies
  in [sum of positive lower ends, sum of positive upper ends], so the bound holds at
  1 - alpha whatever the number of classes (conservatively).
* The check fires on the lower end, not on the point estimate: "lower >= minEffect" tests
  H0: TVD <= minEffect at level alpha, so a standing shift just below minEffect fires at
  most alpha of the time, whatever the traffic. Firing on the point estimate would not: a
  +/-1.5 point diurnal wobble of a 30% rate at 5 predictions/s reaches an estimated 3
  points several percent of the time near its peaks, enough for three breaches in a row
  about once a month. minEffect 0 restores the test alone.

Decisions taken here (each is a place where a naive implementation returns inf, NaN or a
false alarm):

* Counts from Prometheus `increase()` are extrapolated floats; they are rounded half-up to
  whole predictions. NaN, infinite or negative counts make the check Inconclusive.
* Labels that are zero on both sides are dropped: they carry no information and would only
  inflate the degrees of freedom.
* Chi-square needs expected counts of at least `minExpectedCount` (5, Cochran's rule) per
  cell for its p-value to hold. Labels below it are pooled, smallest first, into combined
  cells (in the two-sample case "expected" is the smaller row's pooled expectation). Pooling
  is decided from expectations only, never from what was observed, so the test stays a
  valid test of a coarser hypothesis: it loses power only for shifts among the rare labels.
  If fewer than two cells reach the minimum (for example 10 classes and a handful of
  predictions, or a baseline concentrated on one label) the check is Inconclusive rather
  than trusting a p-value the approximation cannot give. This holds for PSI and JS too:
  they once fell back to P(X2(B-1) > score / scale) there, an asymptotic p-value on exactly
  the windows where asymptotics fail, and fired at several times alpha on sparse labels.
* A label that the training baseline gives probability zero but that the current window
  predicts is possible (the gauge is itself an estimate), so it is not treated as
  impossible: for chi-square its expected count is 0 and it is pooled with the other rare
  labels, so a large mass of a new label still raises the pooled cell's statistic; for
  PSI/JS its baseline probability is floored at half an observation of the current window
  (0.5/n) before renormalising.
* PSI/JS smooth both distributions with half a pseudo-count per label (0.5 B in total),
  spread in proportion to the pooled (two-sample) or baseline (one-sample) distribution
  rather than uniformly: uniform smoothing biases a skewed distribution towards flatness
  and so creates drift out of nothing at small n. Smoothing towards the pooled
  distribution only shrinks the score, which keeps the noise floor conservative.
* Segments whose check is Inconclusive (too few samples, no baseline) are left out of the
  Holm-Bonferroni family: they were not tested, and counting them would only weaken the
  correction for the segments that were. The report is Drift if any tested segment is
  significant after correction, NoDrift if at least one segment was tested and none is, and
  Inconclusive only when no segment could be tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rollforward.api.spec import DriftStatistic
from rollforward.api.status import DriftVerdict

LabelCounts = Mapping[str, float]
"""Predicted-label counts of one window, label -> count (floats, as `increase()` returns)."""

_GAMMA_EPSILON = 1e-15
_GAMMA_TINY = 1e-300
_GAMMA_MAX_ITERATIONS = 100_000
_PSEUDO_COUNT_PER_LABEL = 0.5
_UNSEEN_LABEL_OBSERVATIONS = 0.5
_EXACT_OUTCOME_BUDGET = 20_000
"""Enumerate at most this many tables for an exact p-value (a few milliseconds)."""


# --- the chi-square distribution ------------------------------------------------------------


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a), for a > 0 and x >= 0."""
    if not a > 0 or not x >= 0:
        raise ValueError(f"regularized_upper_gamma needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1:
        # Here Q is never small, so 1 - P loses no precision.
        return max(0.0, 1.0 - _lower_gamma_series(a, x))
    return _upper_gamma_continued_fraction(a, x)


def _log_gamma_prefactor(a: float, x: float) -> float:
    return -x + a * math.log(x) - math.lgamma(a)


def _lower_gamma_series(a: float, x: float) -> float:
    denominator = a
    term = 1.0 / a
    total = term
    for _ in range(_GAMMA_MAX_ITERATIONS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _GAMMA_EPSILON:
            break
    return total * math.exp(_log_gamma_prefactor(a, x))


def _upper_gamma_continued_fraction(a: float, x: float) -> float:
    # Modified Lentz's method for the continued fraction of Gamma(a, x).
    b = x + 1.0 - a
    c = 1.0 / _GAMMA_TINY
    d = 1.0 / b
    h = d
    for i in range(1, _GAMMA_MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _GAMMA_TINY:
            d = _GAMMA_TINY
        c = b + an / c
        if abs(c) < _GAMMA_TINY:
            c = _GAMMA_TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _GAMMA_EPSILON:
            break
    # Combine in log space so a huge statistic underflows to 0 instead of overflowing.
    return math.exp(_log_gamma_prefactor(a, x) + math.log(h))


def chi2_sf(statistic: float, degrees_of_freedom: float) -> float:
    """P(X > statistic) for X ~ chi-square(degrees_of_freedom): the p-value of a chi-square test."""
    if degrees_of_freedom <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {degrees_of_freedom}")
    if math.isnan(statistic):
        raise ValueError("chi-square statistic is NaN")
    if statistic <= 0:
        return 1.0
    return regularized_upper_gamma(degrees_of_freedom / 2.0, statistic / 2.0)


def chi2_isf(probability: float, degrees_of_freedom: float) -> float:
    """The critical value x with P(X > x) = probability, for X ~ chi-square(degrees_of_freedom)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    low, high = 0.0, max(1.0, 2.0 * degrees_of_freedom)
    while chi2_sf(high, degrees_of_freedom) > probability:
        low, high = high, 2.0 * high
    # Bisection: sf is monotone, and 200 halvings exhaust double precision.
    for _ in range(200):
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if chi2_sf(middle, degrees_of_freedom) > probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


# --- divergences between two distributions ---------------------------------------------------


def population_stability_index(current: Sequence[float], baseline: Sequence[float]) -> float:
    """PSI = sum (c - b) ln(c / b) over aligned, strictly positive proportions."""
    _check_aligned_positive(current, baseline)
    return math.fsum((c - b) * math.log(c / b) for c, b in zip(current, baseline, strict=True))


def jensen_shannon_divergence(current: Sequence[float], baseline: Sequence[float]) -> float:
    """JS divergence in nats: the mean KL divergence of each side from their midpoint."""
    _check_aligned_positive(current, baseline)
    total = 0.0
    for c, b in zip(current, baseline, strict=True):
        middle = (c + b) / 2.0
        total += c * math.log(c / middle) + b * math.log(b / middle)
    return max(0.0, total / 2.0)


def _check_aligned_positive(current: Sequence[float], baseline: Sequence[float]) -> None:
    if len(current) != len(baseline) or not current:
        raise ValueError("distributions must be non-empty and aligned label by label")
    if any(not v > 0 for v in (*current, *baseline)):
        raise ValueError("divergences need strictly positive (smoothed) proportions")


# --- multiple testing --------------------------------------------------------------------------


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    A hypothesis is rejected at family-wise level alpha exactly when its adjusted p-value is
    below alpha, which lets every segment carry one number instead of a per-rank threshold.
    """
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# --- API types -----------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )


class PValueMethod(StrEnum):
    """How a p-value was obtained."""

    EXACT = "exact"
    """Exact tail probability (two cells: binomial, or hypergeometric given the margins)."""
    ASYMPTOTIC = "asymptotic"
    """The chi-square distribution of Pearson's statistic (three or more cells)."""


class BaselineProportions(_Frozen):
    """A known label distribution, such as the training baseline: one-sample tests."""

    kind: Literal["proportions"] = "proportions"
    proportions: dict[str, float]
    """Label -> proportion; renormalised, so a sum slightly off 1 is fine."""


class BaselineCounts(_Frozen):
    """The label counts of a reference or seasonal window: two-sample tests."""

    kind: Literal["counts"] = "counts"
    counts: dict[str, float]
    """Label -> count of predictions in the baseline window."""


Baseline = BaselineProportions | BaselineCounts

_STANDARD_NORMAL = NormalDist()

_DEFAULT_THRESHOLDS = {
    DriftStatistic.PSI: 0.1,
    # JS in nats is about PSI / 8 for small shifts, so this matches the PSI default.
    DriftStatistic.JENSEN_SHANNON: 0.0125,
}


class DriftCriteria(_Frozen):
    """How a check decides: the statistic and its limits."""

    statistic: DriftStatistic = DriftStatistic.CHI_SQUARE
    """The statistic that decides drift."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Family-wise false-alarm level per check (across segments, after Holm's correction)."""
    threshold: float | None = Field(default=None, gt=0)
    """PSI/JS score above which drift may fire; defaults to 0.1 (PSI) or 0.0125 (JS)."""
    noise_floor_multiplier: float = Field(default=4.0, ge=0)
    """PSI/JS must also exceed this multiple of the score expected with no drift."""
    min_samples: int = Field(default=200, ge=1)
    """Fewer predictions than this in the current window make the check Inconclusive."""
    min_baseline_samples: int = Field(default=200, ge=1)
    """Fewer predictions than this in a baseline window make the check Inconclusive."""
    min_expected_count: float = Field(default=5.0, gt=0)
    """Chi-square cells with a smaller expected count are pooled (Cochran's rule)."""
    min_effect: float = Field(default=0.03, ge=0, le=0.5)
    """The smallest total variation distance worth an alarm (0.03 = 3 points of label share);
    drift fires only when the effect's lower confidence bound reaches it. 0 disables it."""

    def score_threshold(self) -> float | None:
        """The user's PSI/JS threshold, or its default; None for chi-square."""
        if self.statistic is DriftStatistic.CHI_SQUARE:
            return None
        return self.threshold if self.threshold is not None else _DEFAULT_THRESHOLDS[self.statistic]


class LabelShare(_Frozen):
    """One label's share of the baseline and of the current window."""

    label: str
    baseline: float
    """Baseline proportion (unsmoothed)."""
    current: float
    """Current-window proportion (unsmoothed); 0 when the window is empty."""
    baseline_count: int | None
    """Baseline count, or None for a known-proportions baseline."""
    current_count: int
    """Current-window count, rounded to whole predictions."""


class EffectSize(_Frozen):
    """How far the label distribution moved, with a simultaneous confidence interval."""

    measure: Literal["totalVariation"] = "totalVariation"
    """Total variation distance: half the sum of absolute label-share differences."""
    estimate: float
    """The observed distance, in [0, 1] (0.05 = 5 points of label share moved)."""
    lower: float
    """Lower end of the confidence interval; drift needs it to reach `minimum`."""
    upper: float
    """Upper end of the confidence interval."""
    confidence: float
    """The interval's confidence level, 1 - alpha."""
    minimum: float
    """minEffect: the smallest distance worth an alarm."""

    @property
    def matters(self) -> bool:
        """The shift is at least the minimum effect, at the interval's confidence."""
        return self.lower >= self.minimum


class SegmentDrift(_Frozen):
    """The result of one check of one segment."""

    segment: str
    """The value of the `segment` label; empty when segments are not used."""
    verdict: DriftVerdict
    reason: str
    """Why, in one human sentence."""
    statistic: DriftStatistic
    score: float | None = None
    """The statistic's value (chi-square statistic, PSI or JS)."""
    threshold: float | None = None
    """PSI/JS: the user's threshold. Chi-square: the critical value at alpha."""
    alpha: float
    p_value: float | None = None
    """Pearson's p-value on the pooled counts (exact or asymptotic), for every statistic."""
    p_value_method: PValueMethod | None = None
    adjusted_p_value: float | None = None
    """The p-value after Holm's correction across the tested segments."""
    expected_no_drift: float | None = None
    """The score expected with no drift at this n and m (the degrees of freedom, for chi-square)."""
    noise_floor: float | None = None
    """PSI/JS: noiseFloorMultiplier x expectedNoDrift, the score the check must exceed."""
    degrees_of_freedom: int | None = None
    n: int
    """Predictions in the current window."""
    m: int | None = None
    """Predictions in the baseline window; None for a known-proportions baseline."""
    effect: EffectSize | None = None
    """Total variation distance from the baseline, with its confidence interval."""
    labels: list[LabelShare] = Field(default_factory=list)
    pooled_labels: list[str] = Field(default_factory=list)
    """Chi-square: labels merged into combined cells because their expected counts were small."""


class DriftReport(_Frozen):
    """The result of one check over every segment."""

    verdict: DriftVerdict
    reason: str
    statistic: DriftStatistic
    alpha: float
    correction: Literal["holm"] = "holm"
    """The multiple-testing correction across segments."""
    tested_segments: int
    """Segments that could be tested, i.e. the size of the correction family."""
    segments: list[SegmentDrift]


# --- preparing a window and its baseline -------------------------------------------------------


class _InconclusiveInputError(Exception):
    """Raised while preparing inputs; carries the human reason."""


@dataclass(frozen=True)
class _Sample:
    """Aligned, validated inputs of one check. `reference` holds counts or proportions."""

    labels: tuple[str, ...]
    current: tuple[int, ...]
    reference: tuple[float, ...]
    n: int
    m: int | None

    def baseline_share(self, index: int) -> float:
        if self.m is None:
            return self.reference[index]
        return self.reference[index] / self.m if self.m else 0.0


def _round_count(label: str, value: float) -> int:
    if not math.isfinite(value) or value < 0:
        raise _InconclusiveInputError(
            f"count for label {label!r} is not a finite non-negative number ({value})"
        )
    return math.floor(value + 0.5)


def _prepare(current: LabelCounts, baseline: Baseline, criteria: DriftCriteria) -> _Sample:
    sample = _align(current, baseline)
    _check_sample_sizes(sample, criteria)
    return sample


def _align(current: LabelCounts, baseline: Baseline) -> _Sample:
    counts = {label: _round_count(label, value) for label, value in current.items()}
    if isinstance(baseline, BaselineCounts):
        reference = {label: float(_round_count(label, v)) for label, v in baseline.counts.items()}
        m: int | None = int(sum(reference.values()))
    else:
        reference = _normalised_proportions(baseline.proportions)
        m = None
    labels = tuple(
        sorted(
            label
            for label in set(counts) | set(reference)
            if counts.get(label, 0) > 0 or reference.get(label, 0.0) > 0
        )
    )
    return _Sample(
        labels=labels,
        current=tuple(counts.get(label, 0) for label in labels),
        reference=tuple(reference.get(label, 0.0) for label in labels),
        n=sum(counts.values()),
        m=m,
    )


def _normalised_proportions(proportions: Mapping[str, float]) -> dict[str, float]:
    for label, value in proportions.items():
        if not math.isfinite(value) or value < 0:
            raise _InconclusiveInputError(
                f"baseline proportion for label {label!r} is not a finite non-negative number"
                f" ({value})"
            )
    total = math.fsum(proportions.values())
    if total <= 0:
        raise _InconclusiveInputError("the baseline has no label with a positive proportion")
    return {label: value / total for label, value in proportions.items()}


def _check_sample_sizes(sample: _Sample, criteria: DriftCriteria) -> None:
    if sample.n == 0:
        raise _InconclusiveInputError("no predictions in the current window")
    if sample.n < criteria.min_samples:
        raise _InconclusiveInputError(
            f"only {sample.n} predictions in the current window, fewer than the minimum"
            f" {criteria.min_samples}"
        )
    if sample.m is not None and sample.m < criteria.min_baseline_samples:
        raise _InconclusiveInputError(
            f"only {sample.m} predictions in the baseline window, fewer than the minimum"
            f" {criteria.min_baseline_samples}"
        )
    if len(sample.labels) < 2:
        raise _InconclusiveInputError(
            "only one label was predicted in either window, so there is no distribution to compare"
        )


def _label_shares(sample: _Sample) -> list[LabelShare]:
    return [
        LabelShare(
            label=label,
            baseline=sample.baseline_share(i),
            current=sample.current[i] / sample.n if sample.n else 0.0,
            baseline_count=int(sample.reference[i]) if sample.m is not None else None,
            current_count=sample.current[i],
        )
        for i, label in enumerate(sample.labels)
    ]


# --- the statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measurement:
    """A computed statistic before the correction across segments decides the verdict."""

    score: float
    p_value: float
    p_value_method: PValueMethod
    degrees_of_freedom: int
    expected_no_drift: float
    threshold: float | None
    noise_floor: float | None
    pooled_labels: tuple[str, ...]


def _pool_cells(weights: Sequence[float], minimum: float) -> list[list[int]]:
    """Group label indexes so that every group's weight (expected count) reaches `minimum`.

    Large labels stay alone; small ones are merged smallest first, and a remainder that does
    not reach the minimum joins the last merged group (or, failing that, the smallest large
    label). The result may still hold a group below the minimum when the total is too small.
    """
    large = [i for i, w in enumerate(weights) if w >= minimum]
    small = sorted((i for i, w in enumerate(weights) if w < minimum), key=lambda i: weights[i])
    groups = [[i] for i in large]
    merged: list[list[int]] = []
    pending: list[int] = []
    for index in small:
        pending.append(index)
        if math.fsum(weights[i] for i in pending) >= minimum:
            merged.append(pending)
            pending = []
    if pending:
        if merged:
            merged[-1].extend(pending)
        elif groups:
            min(groups, key=lambda g: weights[g[0]]).extend(pending)
        else:
            merged.append(pending)
    return groups + merged


@dataclass(frozen=True)
class _PooledTable:
    """Label counts after pooling: one row (one-sample) or two rows (two-sample)."""

    current: tuple[int, ...]
    reference: tuple[float, ...]
    """Pooled baseline proportions (one-sample) or pooled baseline counts (two-sample)."""
    one_sample: bool
    pooled_labels: tuple[str, ...]


def _pooled_table(sample: _Sample, criteria: DriftCriteria) -> _PooledTable:
    if sample.m is None:
        weights = [sample.n * p for p in sample.reference]
    else:
        total = sample.n + sample.m
        smaller_row = min(sample.n, sample.m)
        weights = [
            smaller_row * (c + r) / total
            for c, r in zip(sample.current, sample.reference, strict=True)
        ]
    groups = _pool_cells(weights, criteria.min_expected_count)
    group_weights = [math.fsum(weights[i] for i in g) for g in groups]
    if len(groups) < 2 or min(group_weights) < criteria.min_expected_count:
        raise _InconclusiveInputError(
            f"too few predictions for a valid chi-square test: fewer than two cells reach an"
            f" expected count of {criteria.min_expected_count:g} (n={sample.n}"
            + (f", m={sample.m})" if sample.m is not None else ")")
        )
    return _PooledTable(
        current=tuple(sum(sample.current[i] for i in g) for g in groups),
        reference=tuple(math.fsum(sample.reference[i] for i in g) for g in groups),
        one_sample=sample.m is None,
        pooled_labels=tuple(sorted(sample.labels[i] for g in groups if len(g) > 1 for i in g)),
    )


def _pearson(table: _PooledTable) -> tuple[float, float, PValueMethod]:
    """Pearson's statistic and its p-value: exact when that is cheap, asymptotic otherwise.

    The chi-square approximation is good for large counts but can exceed alpha when the
    statistic takes few distinct values: a binary model at n=100 and 30% positives fires
    6.3% of the time at alpha 0.05, a 10-class model pooled to three cells at n=20 fires
    5.03%. So the p-value is the exact tail probability of the same statistic whenever that
    is cheap: always for two cells (binomial for a known baseline, hypergeometric given the
    margins for two windows; both sums stop once terms vanish), and by enumerating every
    table with the same margins when there are at most `_EXACT_OUTCOME_BUDGET` of them. An
    exact p-value is never below alpha more often than alpha under no drift. Beyond the
    budget the counts are large enough for the chi-square distribution.
    """
    n = sum(table.current)
    if table.one_sample:
        statistic = _goodness_of_fit(table.current, table.reference, n)
    else:
        statistic = _homogeneity(table.current, [int(r) for r in table.reference])
    degrees_of_freedom = len(table.current) - 1
    if degrees_of_freedom == 1:
        first = table.current[0]
        if table.one_sample:
            p_value = _binomial_two_sided(first, n, table.reference[0])
        else:
            m = int(sum(table.reference))
            p_value = _hypergeometric_two_sided(first, n, m, first + int(table.reference[0]))
        return statistic, p_value, PValueMethod.EXACT
    if math.comb(n + degrees_of_freedom, degrees_of_freedom) <= _EXACT_OUTCOME_BUDGET:
        return statistic, _enumerated_p_value(table, statistic), PValueMethod.EXACT
    return statistic, chi2_sf(statistic, degrees_of_freedom), PValueMethod.ASYMPTOTIC


def _enumerated_p_value(table: _PooledTable, observed: float) -> float:
    """P(statistic >= observed) over every current row with the observed total.

    In both cases the statistic is sum_i w_i (x_i - e_i)^2 over the current row x: for a
    known baseline e_i = n p_i and w_i = 1/e_i, and the row is multinomial; for two windows
    the column totals t_i are fixed, e_i = n t_i / N, w_i = 1/e_i + 1/(m t_i / N), and the
    row is multivariate hypergeometric.
    """
    n = sum(table.current)
    if table.one_sample:
        expected = [n * p for p in table.reference]
        weights = [1.0 / e for e in expected]
        highs = [n] * len(expected)
        log_weights = [
            [x * math.log(p) - math.lgamma(x + 1) for x in range(n + 1)] for p in table.reference
        ]
        log_constant = math.lgamma(n + 1)
    else:
        m = int(sum(table.reference))
        grand = n + m
        columns = [c + int(r) for c, r in zip(table.current, table.reference, strict=True)]
        expected = [n * t / grand for t in columns]
        weights = [1.0 / e + 1.0 / (m * t / grand) for e, t in zip(expected, columns, strict=True)]
        highs = columns
        log_weights = [[_log_choose(t, x) for x in range(t + 1)] for t in columns]
        log_constant = -_log_choose(grand, n)
    cells = len(expected)
    capacity = [sum(highs[i:]) for i in range(cells)] + [0]
    cutoff = observed * (1.0 - 1e-9) - 1e-12
    total = 0.0

    def visit(cell: int, remaining: int, statistic: float, log_p: float) -> None:
        nonlocal total
        if cell == cells - 1:
            if remaining <= highs[cell]:
                final = statistic + weights[cell] * (remaining - expected[cell]) ** 2
                if final >= cutoff:
                    total += math.exp(log_p + log_weights[cell][remaining] + log_constant)
            return
        lowest = max(0, remaining - capacity[cell + 1])
        for x in range(lowest, min(highs[cell], remaining) + 1):
            visit(
                cell + 1,
                remaining - x,
                statistic + weights[cell] * (x - expected[cell]) ** 2,
                log_p + log_weights[cell][x],
            )

    visit(0, n, 0.0, 0.0)
    return min(1.0, total)


def _log_choose(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def _chi_square(sample: _Sample, criteria: DriftCriteria) -> _Measurement:
    table = _pooled_table(sample, criteria)
    statistic, p_value, method = _pearson(table)
    degrees_of_freedom = len(table.current) - 1
    return _Measurement(
        score=statistic,
        p_value=p_value,
        p_value_method=method,
        degrees_of_freedom=degrees_of_freedom,
        expected_no_drift=float(degrees_of_freedom),
        threshold=None,
        noise_floor=None,
        pooled_labels=table.pooled_labels,
    )


# With two cells Pearson's statistic is a function of |x - E[x]|, so its exact p-value is
# the probability of landing at least as far from the mean as the observation.


def _binomial_two_sided(x: int, n: int, p: float) -> float:
    def log_pmf(k: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )

    return _two_sided_tail(log_pmf, 0, n, n * p, x)


def _hypergeometric_two_sided(x: int, n: int, m: int, column: int) -> float:
    """P(|X - E X| >= |x - E X|) for X the current row's share of a column of `column`."""

    log_total = _log_choose(n + m, n)

    def log_pmf(k: int) -> float:
        return _log_choose(column, k) + _log_choose(n + m - column, n - k) - log_total

    low, high = max(0, column - m), min(n, column)
    return _two_sided_tail(log_pmf, low, high, n * column / (n + m), x)


def _two_sided_tail(
    log_pmf: Callable[[int], float], low: int, high: int, mean: float, observed: int
) -> float:
    distance = abs(observed - mean)
    # Outcomes as far from the mean as the observation tie with it; the slack absorbs
    # rounding in the mean so that the mirror image of the observation is counted.
    slack = 1e-9 * max(1.0, distance)
    if distance <= slack:
        return 1.0
    lower_cut = math.floor(mean - distance + slack)
    upper_cut = math.ceil(mean + distance - slack)
    total = _tail_sum(log_pmf, lower_cut, low - 1, -1) + _tail_sum(log_pmf, upper_cut, high + 1, 1)
    return min(1.0, total)


def _tail_sum(log_pmf: Callable[[int], float], start: int, stop: int, step: int) -> float:
    """Sum the pmf from `start` away from the mode; terms shrink geometrically, so stop early."""
    total = 0.0
    previous = math.inf
    for k in range(start, stop, step):
        term = math.exp(log_pmf(k))
        total += term
        if term < previous and term <= total * 1e-17:
            break
        previous = term
    return total


def _goodness_of_fit(observed: Sequence[int], proportions: Sequence[float], n: int) -> float:
    return math.fsum((o - n * p) ** 2 / (n * p) for o, p in zip(observed, proportions, strict=True))


def _homogeneity(current: Sequence[int], reference: Sequence[int]) -> float:
    n, m = sum(current), sum(reference)
    total = n + m
    statistic = 0.0
    for c, r in zip(current, reference, strict=True):
        column = c + r
        for observed, row in ((c, n), (r, m)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    return statistic


def _smoothed_distributions(sample: _Sample) -> tuple[list[float], list[float]]:
    """Current and baseline proportions with no zero cell (see the module docstring)."""
    pseudo_total = _PSEUDO_COUNT_PER_LABEL * len(sample.labels)
    if sample.m is None:
        unseen = _UNSEEN_LABEL_OBSERVATIONS / sample.n
        floored = [p if p > 0 else unseen for p in sample.reference]
        total = math.fsum(floored)
        baseline = [p / total for p in floored]
        target = baseline
    else:
        grand = sample.n + sample.m
        target = [(c + r) / grand for c, r in zip(sample.current, sample.reference, strict=True)]
        baseline = [
            (r + pseudo_total * t) / (sample.m + pseudo_total)
            for r, t in zip(sample.reference, target, strict=True)
        ]
    current = [
        (c + pseudo_total * t) / (sample.n + pseudo_total)
        for c, t in zip(sample.current, target, strict=True)
    ]
    return current, baseline


def _divergence(sample: _Sample, criteria: DriftCriteria) -> _Measurement:
    current, baseline = _smoothed_distributions(sample)
    # Under no drift, sum (c - b)^2 / p ~ (1/n + 1/m) X2(B-1); PSI is that to second order,
    # JS an eighth of it.
    scale = 1.0 / sample.n + (1.0 / sample.m if sample.m is not None else 0.0)
    if criteria.statistic is DriftStatistic.PSI:
        score, per_unit = population_stability_index(current, baseline), 1.0
    else:
        score, per_unit = jensen_shannon_divergence(current, baseline), 1.0 / 8.0
    degrees_of_freedom = len(sample.labels) - 1
    expected = degrees_of_freedom * scale * per_unit
    # Pearson's p-value on the pooled counts; where it cannot run, the check is Inconclusive
    # (the scaled-divergence approximation fails on exactly those windows).
    _, p_value, method = _pearson(_pooled_table(sample, criteria))
    return _Measurement(
        score=score,
        p_value=p_value,
        p_value_method=method,
        degrees_of_freedom=degrees_of_freedom,
        expected_no_drift=expected,
        threshold=criteria.score_threshold(),
        noise_floor=criteria.noise_floor_multiplier * expected,
        pooled_labels=(),
    )


def _measure(sample: _Sample, criteria: DriftCriteria) -> _Measurement:
    if criteria.statistic is DriftStatistic.CHI_SQUARE:
        return _chi_square(sample, criteria)
    return _divergence(sample, criteria)


# --- effect size ---------------------------------------------------------------------------------


def _share_variance(count: float, total: int) -> float:
    """Binomial variance of a share, with one pseudo-success and one pseudo-failure so that a
    label seen 0 or n times still gets a non-zero width (Agresti-Coull's adjustment)."""
    share = (count + 1.0) / (total + 2.0)
    return share * (1.0 - share) / total


def _effect_size(sample: _Sample, alpha: float, minimum: float) -> EffectSize:
    """Total variation distance with a simultaneous (1 - alpha) interval (module docstring)."""
    labels = len(sample.labels)
    differences = [sample.current[i] / sample.n - sample.baseline_share(i) for i in range(labels)]
    # Two labels have one difference (they move together); more need Bonferroni over labels.
    family = 1 if labels <= 2 else labels
    z = _STANDARD_NORMAL.inv_cdf(1.0 - alpha / (2.0 * family))
    widths = []
    for i in range(labels):
        variance = _share_variance(sample.current[i], sample.n)
        if sample.m is not None:
            variance += _share_variance(sample.reference[i], sample.m)
        widths.append(z * math.sqrt(variance))
    lows = [d - w for d, w in zip(differences, widths, strict=True)]
    highs = [d + w for d, w in zip(differences, widths, strict=True)]
    # TVD is both the sum of the positive and of the negative differences; each bound uses
    # whichever side is tighter.
    lower = max(math.fsum(max(0.0, x) for x in lows), math.fsum(max(0.0, -x) for x in highs))
    upper = min(math.fsum(max(0.0, x) for x in highs), math.fsum(max(0.0, -x) for x in lows))
    estimate = math.fsum(abs(d) for d in differences) / 2.0
    return EffectSize(
        estimate=estimate,
        lower=min(lower, estimate),
        upper=min(1.0, max(upper, estimate)),
        confidence=1.0 - alpha,
        minimum=minimum,
    )


def _points(value: float) -> str:
    return f"{100.0 * value:.1f}"


def _effect_text(effect: EffectSize) -> str:
    """The effect in points of label share, e.g. 'TVD 4.2 pt (99% CI 2.9-5.5)'."""
    return (
        f"TVD {_points(effect.estimate)} pt ({100.0 * effect.confidence:g}% CI"
        f" {_points(effect.lower)}-{_points(effect.upper)})"
    )


# --- verdicts and reasons ------------------------------------------------------------------------

_STATISTIC_NAMES = {
    DriftStatistic.CHI_SQUARE: "chi-square",
    DriftStatistic.PSI: "PSI",
    DriftStatistic.JENSEN_SHANNON: "Jensen-Shannon",
}


def _sizes(sample: _Sample) -> str:
    if sample.m is None:
        return f"n={sample.n}, training baseline"
    return f"n={sample.n}, m={sample.m}"


def _significance(p_value: float, adjusted: float, family: int) -> str:
    if family > 1:
        return f"p={p_value:.3g}, Holm-adjusted over {family} segments to {adjusted:.3g}"
    return f"p={p_value:.3g}"


def _decide(
    sample: _Sample,
    measured: _Measurement,
    adjusted: float,
    family: int,
    criteria: DriftCriteria,
) -> tuple[DriftVerdict, str]:
    """The statistic's own rule; `_gate_on_effect` then asks whether the shift matters."""
    alpha = criteria.alpha
    significant = adjusted < alpha
    significance = _significance(measured.p_value, adjusted, family)
    if measured.threshold is None or measured.noise_floor is None:
        verdict = DriftVerdict.DRIFT if significant else DriftVerdict.NO_DRIFT
        comparison = "<" if significant else ">="
        return verdict, (
            f"chi-square {measured.score:.4g} on {measured.degrees_of_freedom} df:"
            f" {significance} {comparison} alpha {alpha:g} ({_sizes(sample)})"
        )
    name = _STATISTIC_NAMES[criteria.statistic]
    floor = (
        f"noise floor {measured.noise_floor:.4g} ({criteria.noise_floor_multiplier:g} x the"
        f" no-drift expectation {measured.expected_no_drift:.4g} at {_sizes(sample)})"
    )
    if measured.score <= measured.threshold:
        return DriftVerdict.NO_DRIFT, (
            f"{name} {measured.score:.4g} is not above the threshold {measured.threshold:g}"
            f" ({_sizes(sample)})"
        )
    if measured.score <= measured.noise_floor:
        return DriftVerdict.NO_DRIFT, (
            f"{name} {measured.score:.4g} is above the threshold {measured.threshold:g} but"
            f" within the {floor}"
        )
    if not significant:
        return DriftVerdict.NO_DRIFT, (
            f"{name} {measured.score:.4g} exceeds the threshold and the {floor}, but is not"
            f" significant: {significance} >= alpha {alpha:g}"
        )
    return DriftVerdict.DRIFT, (
        f"{name} {measured.score:.4g} exceeds the threshold {measured.threshold:g} and the"
        f" {floor}; {significance} < alpha {alpha:g}"
    )


def _gate_on_effect(
    verdict: DriftVerdict, reason: str, effect: EffectSize
) -> tuple[DriftVerdict, str]:
    """A significant shift fires only when its effect's lower bound reaches minEffect."""
    shown = _effect_text(effect)
    if verdict is not DriftVerdict.DRIFT:
        return verdict, f"{reason}; {shown}"
    if effect.matters:
        return verdict, f"{reason}; {shown} >= minEffect {_points(effect.minimum)} pt"
    return DriftVerdict.NO_DRIFT, (
        f"{reason}, but the shift is too small to matter: {shown}, lower bound below"
        f" minEffect {_points(effect.minimum)} pt"
    )


def _inconclusive(
    segment: str, reason: str, criteria: DriftCriteria, sample: _Sample | None
) -> SegmentDrift:
    return SegmentDrift(
        segment=segment,
        verdict=DriftVerdict.INCONCLUSIVE,
        reason=reason,
        statistic=criteria.statistic,
        alpha=criteria.alpha,
        n=sample.n if sample is not None else 0,
        m=sample.m if sample is not None else None,
        labels=_label_shares(sample) if sample is not None else [],
    )


def _unchecked_sample(current: LabelCounts, baseline: Baseline) -> _Sample | None:
    """Best-effort shares for an Inconclusive result, so the report still shows the data."""
    try:
        return _align(current, baseline)
    except _InconclusiveInputError:
        return None


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_segments(
    current: Mapping[str, LabelCounts],
    baseline: Baseline | Mapping[str, Baseline],
    criteria: DriftCriteria,
) -> DriftReport:
    """Check every segment against its baseline, correcting across segments (Holm).

    `current` maps the `segment` label value ("" when segments are not used) to that
    segment's label counts. `baseline` is either one baseline for every segment (the
    training gauge has no segment label) or a baseline per segment (reference and seasonal
    windows). A segment present on one side only is checked with empty counts on the
    other, which makes it Inconclusive.
    """
    per_segment = isinstance(baseline, Mapping)
    names = set(current) | (set(baseline) if isinstance(baseline, Mapping) else set())
    segments = sorted(names) or [""]
    results: dict[str, SegmentDrift] = {}
    tested: dict[str, tuple[_Sample, _Measurement]] = {}
    for segment in segments:
        counts = current.get(segment, {})
        segment_baseline = baseline.get(segment) if isinstance(baseline, Mapping) else baseline
        if segment_baseline is None:
            reason = "no baseline for this segment" if per_segment else "no baseline"
            results[segment] = _inconclusive(segment, reason, criteria, None)
            continue
        try:
            sample = _prepare(counts, segment_baseline, criteria)
            tested[segment] = (sample, _measure(sample, criteria))
        except _InconclusiveInputError as problem:
            shown = _unchecked_sample(counts, segment_baseline)
            results[segment] = _inconclusive(segment, str(problem), criteria, shown)
    results.update(_corrected(tested, criteria))
    ordered = [results[s] for s in segments]
    return _report(ordered, len(tested), criteria)


def evaluate_drift(
    current: LabelCounts, baseline: Baseline, criteria: DriftCriteria
) -> DriftReport:
    """Check one window against its baseline (no segments)."""
    return evaluate_segments({"": current}, baseline, criteria)


def _corrected(
    tested: Mapping[str, tuple[_Sample, _Measurement]], criteria: DriftCriteria
) -> dict[str, SegmentDrift]:
    names = list(tested)
    adjusted = holm_adjusted([tested[s][1].p_value for s in names])
    results = {}
    for segment, adjusted_p in zip(names, adjusted, strict=True):
        sample, measured = tested[segment]
        verdict, reason = _decide(sample, measured, adjusted_p, len(names), criteria)
        effect = _effect_size(sample, criteria.alpha, criteria.min_effect)
        verdict, reason = _gate_on_effect(verdict, reason, effect)
        threshold = measured.threshold
        if threshold is None:
            threshold = chi2_isf(criteria.alpha, measured.degrees_of_freedom)
        results[segment] = SegmentDrift(
            segment=segment,
            verdict=verdict,
            reason=reason,
            statistic=criteria.statistic,
            score=measured.score,
            threshold=threshold,
            alpha=criteria.alpha,
            p_value=measured.p_value,
            p_value_method=measured.p_value_method,
            adjusted_p_value=adjusted_p,
            expected_no_drift=measured.expected_no_drift,
            noise_floor=measured.noise_floor,
            degrees_of_freedom=measured.degrees_of_freedom,
            n=sample.n,
            m=sample.m,
            effect=effect,
            labels=_label_shares(sample),
            pooled_labels=list(measured.pooled_labels),
        )
    return results


def _report(segments: list[SegmentDrift], tested: int, criteria: DriftCriteria) -> DriftReport:
    drifted = [s for s in segments if s.verdict is DriftVerdict.DRIFT]
    inconclusive = [s for s in segments if s.verdict is DriftVerdict.INCONCLUSIVE]
    if len(segments) == 1:
        verdict, reason = segments[0].verdict, segments[0].reason
    elif drifted:
        verdict = DriftVerdict.DRIFT
        reason = f"drift in segment(s) {_names(drifted)} of {tested} tested"
    elif tested:
        verdict = DriftVerdict.NO_DRIFT
        reason = f"no drift in {tested} tested segment(s)"
    else:
        verdict = DriftVerdict.INCONCLUSIVE
        reason = (
            f"no segment could be tested: {segments[0].reason} (segment {segments[0].segment!r})"
        )
    if len(segments) > 1 and inconclusive and tested:
        reason += f"; not tested: {_names(inconclusive)}"
    return DriftReport(
        verdict=verdict,
        reason=reason,
        statistic=criteria.statistic,
        alpha=criteria.alpha,
        tested_segments=tested,
        segments=segments,
    )


def _names(segments: Iterable[SegmentDrift]) -> str:
    return ", ".join(repr(s.segment) for s in segments)
