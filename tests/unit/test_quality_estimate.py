"""Estimated quality in status: shared queries, each variant's series, honest gaps."""

from __future__ import annotations

import pytest

from fixtures.decision_inputs import NS, T0, deployment
from rollforward.api import ModelDeploymentStatus, VariantStatus
from rollforward.estimation import estimate
from rollforward.fetch import plan_fetch
from rollforward.measurements import QueryResult, Sample
from rollforward.quality_estimate import (
    EstimationInputs,
    calibration_of,
    estimate_quality,
    estimation_queries,
)
from rollforward.serving.calibration import ScoreCalibration
from rollforward.serving.contract import (
    DECISION_THRESHOLD,
    SCORE_CALIBRATION,
    SCORE_CALIBRATION_SAMPLES,
)
from rollforward.settings import OperatorSettings

pytestmark = pytest.mark.unit

TABLE = ScoreCalibration(upper_edges=[0.5, 1.0], samples=[200, 100], positives=[20, 80])


def _calibration(version: str, table: ScoreCalibration = TABLE) -> list[Sample]:
    mine = {"namespace": NS, "model": "upsell", "version": version}
    samples = [Sample(labels={**mine, "__name__": DECISION_THRESHOLD}, value=table.threshold)]
    for edge, n, p in zip(table.upper_edges, table.samples, table.positives, strict=True):
        le = {**mine, "le": repr(edge)}
        samples.append(Sample(labels={**le, "__name__": SCORE_CALIBRATION}, value=p / n))
        samples.append(Sample(labels={**le, "__name__": SCORE_CALIBRATION_SAMPLES}, value=n))
    return samples


def _histogram(variant: str, version: str, below: float, above: float) -> list[Sample]:
    labels = {"namespace": NS, "model": "upsell", "version": version, "variant": variant}
    cumulative = {"0.5": below, "1.0": below + above, "+Inf": below + above}
    return [Sample(labels={**labels, "le": le}, value=v) for le, v in cumulative.items()]


def _serving() -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        variants=[
            VariantStatus(name="champion", role="champion", version="upsell:v1"),
            VariantStatus(name="challenger", role="challenger", version="upsell:v1-gbm"),
        ]
    )


def test_the_queries_are_shared_and_fetched_with_the_drift_check() -> None:
    plan = plan_fetch(deployment(), OperatorSettings(), T0)
    queries = estimation_queries(deployment())

    assert plan.estimation is not None and plan.drift is not None
    assert plan.estimation.tick == plan.drift.tick
    assert "upsell" not in queries.histogram + queries.calibration
    assert "by (__name__, namespace, model, version, le)" in queries.calibration


def test_each_variant_is_estimated_from_its_own_histogram_and_calibration() -> None:
    other = ScoreCalibration(upper_edges=[0.5, 1.0], samples=[100, 100], positives=[50, 50])
    inputs = EstimationInputs(
        T0,
        histogram=QueryResult(
            samples=(
                *_histogram("champion", "upsell:v1", below=300, above=100),
                *_histogram("challenger", "upsell:v1-gbm", below=10, above=30),
                *_histogram("champion", "upsell:v0", below=999, above=999),
            )
        ),
        calibration=QueryResult(
            samples=(*_calibration("upsell:v1"), *_calibration("upsell:v1-gbm", other))
        ),
    )

    estimated = estimate_quality(deployment(_serving()), inputs)

    champion, challenger = estimated.variants
    expected = estimate(TABLE, [300, 100])
    assert expected is not None and champion.accuracy is not None
    assert champion.samples == 400 and champion.version == "upsell:v1"
    assert champion.accuracy.value == pytest.approx(expected.accuracy.value, abs=1e-4)
    assert champion.accuracy.lower < champion.accuracy.value < champion.accuracy.upper
    assert challenger.samples == 40 and challenger.accuracy is not None
    assert challenger.accuracy.value == pytest.approx(0.5, abs=0.01)
    assert estimated.window == deployment().spec.drift.window


def test_the_exported_table_reads_back_as_the_recorded_one() -> None:
    assert calibration_of(_calibration("upsell:v1")) == TABLE


def test_a_version_without_calibration_or_traffic_says_why() -> None:
    inputs = EstimationInputs(
        T0,
        histogram=QueryResult(samples=tuple(_histogram("champion", "upsell:v1", 0, 0))),
        calibration=QueryResult(samples=tuple(_calibration("upsell:v1"))),
    )

    champion, challenger = estimate_quality(deployment(_serving()), inputs).variants

    assert champion.accuracy is None and "no predictions" in champion.reason
    assert challenger.accuracy is None and "no score calibration" in challenger.reason


def test_a_failed_query_is_no_estimate_rather_than_zero() -> None:
    inputs = EstimationInputs(
        T0,
        histogram=QueryResult(error="cannot connect"),
        calibration=QueryResult(samples=()),
    )

    estimated = estimate_quality(deployment(_serving()), inputs)

    assert estimated.variants == [] and "cannot connect" in estimated.reason
