"""Each variant's estimated quality, from two batched queries to status. Pure.

Gather runs `estimation_queries` at the drift check's aligned tick: the score histogram's
increase over the drift window, and the calibration every bento exports as gauges. The
texts name no resource, so one evaluation per tick serves every ModelDeployment (as the
drift queries do); this module picks each variant's series out of the shared results and
hands them to rollforward.estimation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from rollforward.api import (
    MetricEstimate,
    ModelDeployment,
    QualityEstimation,
    VariantQualityEstimate,
    duration_seconds,
)
from rollforward.estimation import Estimate, bucket_counts, estimate
from rollforward.measurements import QueryResult, Sample
from rollforward.serving.calibration import ScoreCalibration
from rollforward.serving.contract import (
    DECISION_THRESHOLD,
    PREDICTION_SCORE,
    SCORE_CALIBRATION,
    SCORE_CALIBRATION_SAMPLES,
)

_CALIBRATION_NAMES = f"{SCORE_CALIBRATION}|{SCORE_CALIBRATION_SAMPLES}|{DECISION_THRESHOLD}"


@dataclass(frozen=True)
class EstimationQueries:
    histogram: str
    calibration: str


@dataclass(frozen=True)
class EstimationInputs:
    tick: datetime
    histogram: QueryResult
    calibration: QueryResult


def estimation_queries(deployment: ModelDeployment) -> EstimationQueries:
    window = f"{int(duration_seconds(deployment.spec.drift.window))}s"
    return EstimationQueries(
        histogram=f"sum by (namespace, model, version, variant, le) "
        f"(increase({PREDICTION_SCORE}_bucket[{window}]))",
        # Grouping by __name__ keeps the three gauges apart in one answer.
        calibration=f"max by (__name__, namespace, model, version, le) "
        f'({{__name__=~"{_CALIBRATION_NAMES}"}})',
    )


def estimate_quality(deployment: ModelDeployment, inputs: EstimationInputs) -> QualityEstimation:
    """The estimate of every variant serving now (status.variants)."""
    window = deployment.spec.drift.window
    for result in (inputs.histogram, inputs.calibration):
        if not result.ok:
            return QualityEstimation(
                window=window, estimated_at=inputs.tick, reason=f"query failed: {result.error}"
            )
    variants = [
        _variant(deployment, inputs, variant.name, variant.version)
        for variant in deployment.status.variants
    ]
    return QualityEstimation(window=window, estimated_at=inputs.tick, variants=variants)


def _variant(
    deployment: ModelDeployment, inputs: EstimationInputs, name: str, version: str
) -> VariantQualityEstimate:
    mine = {"namespace": deployment.metadata.namespace, "model": deployment.spec.model}
    calibration = calibration_of(_matching(inputs.calibration.samples, **mine, version=version))
    if isinstance(calibration, str):
        return VariantQualityEstimate(variant=name, version=version, reason=calibration)
    histogram = _matching(inputs.histogram.samples, **mine, version=version, variant=name)
    cumulative = [(_le(s), s.value) for s in histogram]
    counts = bucket_counts(cumulative, calibration.upper_edges)
    result = estimate(calibration, counts)
    if result is None:
        reason = f"no predictions of {version} in the last {deployment.spec.drift.window}"
        return VariantQualityEstimate(variant=name, version=version, reason=reason)
    return VariantQualityEstimate(
        variant=name,
        version=version,
        samples=round(result.samples),
        accuracy=_report(result.accuracy),
        precision=_report(result.precision),
        recall=_report(result.recall),
    )


def calibration_of(samples: list[Sample]) -> ScoreCalibration | str:
    """The reliability table a version exports, or why it cannot be used."""
    by_name: dict[str, dict[float, float]] = defaultdict(dict)
    for sample in samples:
        by_name[sample.labels.get("__name__", "")][_le(sample)] = sample.value
    rates, sizes = by_name.get(SCORE_CALIBRATION), by_name.get(SCORE_CALIBRATION_SAMPLES)
    threshold = by_name.get(DECISION_THRESHOLD, {}).get(math.inf)
    if not rates or not sizes or threshold is None or set(rates) != set(sizes):
        return "this version exports no score calibration (trained before it was recorded?)"
    edges = sorted(rates)
    samples_per_bucket = [round(sizes[e]) for e in edges]
    positives = [
        min(max(round(rates[e] * n), 0), n) for e, n in zip(edges, samples_per_bucket, strict=True)
    ]
    try:
        return ScoreCalibration(
            upper_edges=edges,
            samples=samples_per_bucket,
            positives=positives,
            threshold=threshold,
        )
    except ValidationError as error:
        return f"the exported score calibration is invalid: {error.errors()[0]['msg']}"


def _matching(samples: Iterable[Sample], **wanted: str) -> list[Sample]:
    return [s for s in samples if all(s.labels.get(k, "") == v for k, v in wanted.items())]


def _le(sample: Sample) -> float:
    """The bucket edge; a sample without one (the threshold gauge) sorts as +Inf."""
    return float(sample.labels.get("le", "+Inf"))


def _report(value: Estimate | None) -> MetricEstimate | None:
    if value is None:
        return None
    return MetricEstimate(
        value=round(value.value, 4), lower=round(value.lower, 4), upper=round(value.upper, 4)
    )
