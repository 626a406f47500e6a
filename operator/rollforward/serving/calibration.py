"""The score calibration a bento's training records, for estimating quality without labels.

A reliability table over the buckets of `rollforward_prediction_score` (the histogram every
bento already exports): for each bucket, how many validation rows scored in it and how many
of them were positive. The operator multiplies that table by the live histogram to get the
expected confusion matrix (rollforward.estimation), so the table must use the histogram's
own buckets: a finer calibration could not be applied to counts the histogram cannot split.

Plain Python and pydantic only: the operator imports this module, and it travels with the
bento (no numpy needed to read it).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

SCORE_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Upper edges (Prometheus `le`) of the score histogram's buckets; scores are in [0, 1]."""


class ScoreCalibration(BaseModel):
    """A reliability table on the validation set, bucket by bucket (metadata `calibration`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    upper_edges: list[float] = Field(default_factory=lambda: list(SCORE_BUCKETS))
    """The `le` of each bucket; bucket i holds scores in (upper_edges[i-1], upper_edges[i]]."""
    samples: list[int]
    """Validation rows whose score fell in each bucket."""
    positives: list[int]
    """Of those, how many were truly positive."""
    threshold: float = 0.5
    """Scores at or above it are predicted positive; it must be one of the edges (or 0)."""
    expected_calibration_error: float | None = None
    """How far the raw scores are from the observed rates on validation (weighted mean
    absolute gap per bucket): the check that the scores are probabilities at all."""

    @model_validator(mode="after")
    def _consistent(self) -> ScoreCalibration:
        sizes = {len(self.upper_edges), len(self.samples), len(self.positives)}
        if len(sizes) != 1:
            raise ValueError("upper_edges, samples and positives must have one entry per bucket")
        if any(p < 0 or p > n for p, n in zip(self.positives, self.samples, strict=True)):
            raise ValueError("each bucket needs 0 <= positives <= samples")
        return self

    def lower_edges(self) -> list[float]:
        return [0.0, *self.upper_edges[:-1]]

    def positive_rate(self, bucket: int) -> float:
        """The bucket's calibrated probability, shrunk by one pseudo-row at its midpoint so a
        bucket validation never reached still gets a sensible (and uncertain) value."""
        middle = (self.lower_edges()[bucket] + self.upper_edges[bucket]) / 2
        return (self.positives[bucket] + middle) / (self.samples[bucket] + 1)

    def rate_variance(self, bucket: int) -> float:
        """The sampling variance of `positive_rate` (a binomial proportion)."""
        rate = self.positive_rate(bucket)
        return rate * (1 - rate) / (self.samples[bucket] + 1)

    def predicts_positive(self, bucket: int) -> bool:
        return self.lower_edges()[bucket] >= self.threshold - 1e-9


def bucket_of(score: float, upper_edges: Sequence[float] = SCORE_BUCKETS) -> int:
    """The histogram bucket a score lands in (Prometheus counts `score <= le`)."""
    return min(bisect_left(list(upper_edges), score), len(upper_edges) - 1)


def reliability_table(
    scores: Sequence[float],
    truth: Sequence[bool],
    threshold: float,
    upper_edges: Sequence[float] = SCORE_BUCKETS,
) -> ScoreCalibration:
    """The reliability table of validation `scores` against their true labels."""
    if threshold > 0 and all(abs(threshold - edge) > 1e-9 for edge in upper_edges):
        raise ValueError(f"threshold {threshold} is not a bucket edge of {list(upper_edges)}")
    samples = [0] * len(upper_edges)
    positives = [0] * len(upper_edges)
    score_sums = [0.0] * len(upper_edges)
    for score, positive in zip(scores, truth, strict=True):
        bucket = bucket_of(score, upper_edges)
        samples[bucket] += 1
        positives[bucket] += int(bool(positive))
        score_sums[bucket] += score
    total = max(sum(samples), 1)
    gaps = (abs(s - p) for s, p, n in zip(score_sums, positives, samples, strict=True) if n)
    return ScoreCalibration(
        upper_edges=list(upper_edges),
        samples=samples,
        positives=positives,
        threshold=threshold,
        expected_calibration_error=round(sum(gaps) / total, 6),
    )
