"""Expected accuracy, precision and recall of a binary model before its labels arrive. Pure.

Confidence-based performance estimation (CBPE, as in NannyML), applied to what every bento
already exports: the live score histogram, and the reliability table its training recorded
(rollforward.serving.calibration). Each live prediction in bucket b is positive with the
probability the table measured for b on validation, so the expected confusion matrix is

    TP = sum over predicted-positive buckets of n_b * c_b      FP = ... n_b * (1 - c_b)
    FN = sum over predicted-negative buckets of n_b * c_b      TN = ... n_b * (1 - c_b)

Decisions a naive version gets wrong:
- **The assumption.** P(label | score) must be what validation measured. That holds under
  covariate shift (the inputs move, the rule linking them to the label does not) and fails
  under concept drift (the same inputs convert differently): then the estimate stays put
  while the truth moves. The operator shows realized quality and drift beside it for that.
- **Two sources of uncertainty, both reported.** The realized metric scatters around its
  expectation (each prediction is a Bernoulli draw: variance sum n_b c_b (1 - c_b)), and the
  table itself is an estimate from finite validation rows (variance sum n_b^2 Var(c_b),
  systematic across the window, so it does not shrink with more traffic).
- **Precision and recall are ratios**: precision divides by the predicted positives, which
  are known; recall divides by TP + FN, both uncertain (delta method; TP and FN come from
  disjoint buckets, so they are independent).
- **Buckets, not raw scores**: the operator sees only the histogram, so the table is kept on
  the histogram's buckets; within-bucket shifts cost a little bias (measured in the bench).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rollforward.serving.calibration import ScoreCalibration

Z_95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """One estimated metric: its expectation, standard error and 95% interval."""

    value: float
    stderr: float

    @property
    def lower(self) -> float:
        return max(0.0, self.value - Z_95 * self.stderr)

    @property
    def upper(self) -> float:
        return min(1.0, self.value + Z_95 * self.stderr)


@dataclass(frozen=True)
class QualityEstimate:
    """Expected quality of `samples` predictions whose labels are not known yet."""

    samples: float
    accuracy: Estimate
    precision: Estimate | None
    """None when nothing was predicted positive."""
    recall: Estimate | None
    """None when no positive is expected at all."""


@dataclass(frozen=True)
class _Cell:
    """An expected confusion-matrix cell and its variance."""

    mean: float
    variance: float


def bucket_counts(cumulative: Sequence[tuple[float, float]], edges: Sequence[float]) -> list[float]:
    """Per-bucket counts from Prometheus's cumulative (le, count) pairs, on `edges`.

    Counters reset and rates interpolate, so cumulative counts can dip by a hair: a negative
    difference is noise, counted as zero.
    """
    by_edge = dict(cumulative)
    counts, below = [], 0.0
    for edge in edges:
        total = next((v for le, v in by_edge.items() if math.isclose(le, edge)), below)
        counts.append(max(total - below, 0.0))
        below = max(total, below)
    return counts


def estimate(calibration: ScoreCalibration, counts: Sequence[float]) -> QualityEstimate | None:
    """The expected quality of predictions counted per bucket; None without predictions."""
    if len(counts) != len(calibration.upper_edges):
        raise ValueError("one count per calibration bucket is needed")
    total = float(sum(counts))
    if total <= 0:
        return None
    tp, fp, fn, tn = _cells(calibration, counts)
    correct = _Cell(tp.mean + tn.mean, tp.variance + tn.variance)
    predicted_positive = tp.mean + fp.mean
    actual_positive = tp.mean + fn.mean
    return QualityEstimate(
        samples=total,
        accuracy=Estimate(correct.mean / total, math.sqrt(correct.variance) / total),
        precision=_ratio(tp, predicted_positive) if predicted_positive > 0 else None,
        recall=_recall(tp, fn) if actual_positive > 0 else None,
    )


def _cells(
    calibration: ScoreCalibration, counts: Sequence[float]
) -> tuple[_Cell, _Cell, _Cell, _Cell]:
    """TP, FP, FN, TN. A bucket's correct and wrong predictions share one variance: they
    are the same draws counted from either side."""
    means, variances = [0.0] * 4, [0.0] * 4
    for bucket, n in enumerate(counts):
        rate = calibration.positive_rate(bucket)
        variance = n * rate * (1 - rate) + n * n * calibration.rate_variance(bucket)
        hit, miss = (0, 1) if calibration.predicts_positive(bucket) else (2, 3)
        means[hit] += n * rate
        means[miss] += n * (1 - rate)
        variances[hit] += variance
        variances[miss] += variance
    tp, fp, fn, tn = (_Cell(m, v) for m, v in zip(means, variances, strict=True))
    return tp, fp, fn, tn


def _ratio(cell: _Cell, known_total: float) -> Estimate:
    return Estimate(cell.mean / known_total, math.sqrt(cell.variance) / known_total)


def _recall(tp: _Cell, fn: _Cell) -> Estimate:
    positives = tp.mean + fn.mean
    variance = (fn.mean**2 * tp.variance + tp.mean**2 * fn.variance) / positives**4
    return Estimate(tp.mean / positives, math.sqrt(variance))
