"""Training: good enough on a random holdout, evaluated on recent data, and drift-visible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from rollforward.serving.contract import EvaluationMetrics
from upsell.generator import generate
from upsell.retrain import acceptance_problems
from upsell.schema import LABELS
from upsell.training import (
    TrainedModel,
    TrainingError,
    TrainingOptions,
    predicted_labels,
    scores,
    train,
)

# ~20 predictions per second for one minute.
ONE_MINUTE_OF_TRAFFIC = 1200


@pytest.fixture(scope="module")
def baseline_model() -> TrainedModel:
    return train(generate("baseline", 20_000, seed=1), TrainingOptions(seed=1))


def test_baseline_model_is_good_enough_on_the_random_holdout(
    baseline_model: TrainedModel,
) -> None:
    holdout = baseline_model.metrics.holdout

    assert holdout.auc is not None and holdout.auc >= 0.75
    assert holdout.accuracy > 0.75
    assert holdout.samples == 5000


def test_holdout_is_a_random_sample_of_the_whole_time_range(
    baseline_model: TrainedModel,
) -> None:
    data = generate("baseline", 20_000, seed=1)
    times = baseline_model.holdout["signup_at"]
    span = data["signup_at"].max() - data["signup_at"].min()

    assert times.max() - times.min() > 0.95 * span
    assert baseline_model.holdout["upgraded"].mean() == pytest.approx(
        data["upgraded"].mean(), abs=0.005
    )


def test_recent_metrics_come_from_the_latest_holdout_rows(baseline_model: TrainedModel) -> None:
    recent = baseline_model.recent

    assert 0 < len(recent) == baseline_model.metrics.recent.samples < len(baseline_model.holdout)
    assert recent["signup_at"].min() > baseline_model.holdout["signup_at"].quantile(0.7)


def test_baseline_distribution_is_the_holdout_prediction_mix(
    baseline_model: TrainedModel,
) -> None:
    distribution = baseline_model.baseline_distribution
    predicted = predicted_labels(
        scores(baseline_model.pipeline, baseline_model.holdout), baseline_model.threshold
    )

    assert set(distribution) == set(LABELS)
    assert distribution["upgrade"] == pytest.approx((predicted == "upgrade").mean(), abs=1e-6)


def test_concept_drift_moves_the_predicted_positive_rate_within_a_minute_of_traffic(
    baseline_model: TrainedModel,
) -> None:
    drifted = generate("concept-drift", 10_000, seed=7)
    after_pivot = drifted[drifted["post_pivot"]].head(ONE_MINUTE_OF_TRAFFIC)
    before_pivot = drifted[~drifted["post_pivot"]].head(ONE_MINUTE_OF_TRAFFIC)
    baseline = baseline_model.baseline_distribution

    def counts(frame: object) -> np.ndarray:
        labels = predicted_labels(scores(baseline_model.pipeline, frame), 0.5)
        return np.array([(labels == label).sum() for label in LABELS])

    def p_value(observed: np.ndarray) -> float:
        expected = np.array([baseline[label] for label in LABELS]) * observed.sum()
        return float(chisquare(observed, expected).pvalue)

    drift_counts = counts(after_pivot)
    positive_rate = drift_counts[LABELS.index("upgrade")] / drift_counts.sum()
    assert baseline["upgrade"] > 0.3 and positive_rate < 0.2
    assert p_value(drift_counts) < 1e-9
    # Before the pivot the same test sees nothing.
    assert p_value(counts(before_pivot)) > 0.001


def test_since_drops_stale_rows_before_training() -> None:
    data = generate("concept-drift", 6000, seed=2)
    pivot = data.loc[data["post_pivot"], "signup_at"].min()

    model = train(data, TrainingOptions(since=pivot))

    assert model.holdout["post_pivot"].all()
    assert model.training_rows == pytest.approx(0.75 * data["post_pivot"].sum(), abs=2)


def test_training_refuses_data_without_both_classes() -> None:
    data = generate("baseline", 400, seed=2)
    data["upgraded"] = False

    with pytest.raises(TrainingError, match="each class"):
        train(data)


def _metrics(auc: float | None) -> EvaluationMetrics:
    return EvaluationMetrics(auc=auc, accuracy=0.8, recall=0.7, samples=100)


def test_acceptance_needs_good_auc_and_no_regression_on_recent_data() -> None:
    assert acceptance_problems(_metrics(0.85), _metrics(0.84), _metrics(0.85), 0.75, 0.02) == []
    assert acceptance_problems(_metrics(0.85), _metrics(0.84), None, 0.75, 0.02) == []

    worse = acceptance_problems(_metrics(0.85), _metrics(0.80), _metrics(0.86), 0.75, 0.02)
    weak = acceptance_problems(_metrics(0.70), _metrics(None), None, 0.75, 0.02)

    assert len(worse) == 1 and "champion" in worse[0]
    assert len(weak) == 2
