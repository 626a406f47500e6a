"""The rollforward_* Prometheus metrics of one serving process.

prometheus_client is imported when the metrics are created, not when this module is
imported: BentoML sets PROMETHEUS_MULTIPROC_DIR in its workers, and prometheus_client
picks single- or multi-process storage at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollforward.serving import calibration, contract

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Positive-class scores are probabilities; ten buckets resolve a shift of the score
# distribution without multiplying series per variant. The calibration uses the same ones.
SCORE_BUCKETS = calibration.SCORE_BUCKETS
# Labels come back minutes to 90 days after the prediction.
DAY = 86_400.0
LABEL_DELAY_BUCKETS = (60.0, 600.0, 3600.0, 6 * 3600.0, DAY, 3 * DAY, 7 * DAY, 30 * DAY, 90 * DAY)


@dataclass(frozen=True)
class MetricIdentity:
    """The labels every series of one serving process shares."""

    model: str
    version: str
    variant: str


class ServingMetrics:
    """Counters, histogram and gauge of the metric contract, bound to one identity."""

    def __init__(self, identity: MetricIdentity, registry: CollectorRegistry | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.identity = identity
        self._predictions = Counter(
            contract.PREDICTIONS_TOTAL.removesuffix("_total"),
            "Predictions served, by predicted label and segment.",
            contract.PREDICTIONS_LABELS,
            registry=registry,
        )
        self._scores = Histogram(
            contract.PREDICTION_SCORE,
            "Positive-class scores of served predictions.",
            contract.PREDICTION_SCORE_LABELS,
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        # Every worker sets the same value; "mostrecent" exposes one series without a pid.
        self._baseline = Gauge(
            contract.BASELINE_RATIO,
            "Training-time predicted-label distribution (validation set).",
            contract.BASELINE_RATIO_LABELS,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._anomalies = Counter(
            contract.INPUT_ANOMALIES_TOTAL.removesuffix("_total"),
            "Odd inputs that were repaired or ignored, by field and kind.",
            contract.INPUT_ANOMALIES_LABELS,
            registry=registry,
        )
        self._outcomes = Counter(
            contract.OUTCOMES_TOTAL.removesuffix("_total"),
            "Delayed ground truth received through /feedback, by true and predicted label, "
            "for the variant and version that made the prediction.",
            contract.OUTCOMES_LABELS,
            registry=registry,
        )
        self._label_delay = Histogram(
            contract.LABEL_DELAY_SECONDS,
            "Seconds from a prediction to its /feedback label, by the prediction's variant.",
            contract.LABEL_DELAY_LABELS,
            buckets=LABEL_DELAY_BUCKETS,
            registry=registry,
        )
        self._score_child: Any = self._scores.labels(
            identity.model, identity.version, identity.variant
        )
        info = Gauge(
            contract.VARIANT_INFO,
            "Always 1: the model, version and variant this process serves.",
            contract.VARIANT_INFO_LABELS,
            registry=registry,
            multiprocess_mode="max",
        )
        info.labels(identity.model, identity.version, identity.variant).set(1)
        self._calibration = Gauge(
            contract.SCORE_CALIBRATION,
            "Observed positive rate per score bucket on the validation set at training time.",
            contract.SCORE_CALIBRATION_LABELS,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._calibration_samples = Gauge(
            contract.SCORE_CALIBRATION_SAMPLES,
            "Validation rows per score bucket behind rollforward_score_calibration.",
            contract.SCORE_CALIBRATION_LABELS,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._log_drops = Counter(
            contract.LOG_RECORDS_DROPPED_TOTAL.removesuffix("_total"),
            "Prediction and feedback log records dropped (buffer full or store error).",
            contract.LOG_RECORDS_DROPPED_LABELS,
            registry=registry,
        )
        self._unverified = Counter(
            contract.FEEDBACK_UNVERIFIED_TOTAL.removesuffix("_total"),
            "Feedback labels counted with only the per-process duplicate check, because the "
            "bento store's claim did not settle (no store, store error, back-off, unsupported).",
            contract.FEEDBACK_UNVERIFIED_LABELS,
            registry=registry,
        )
        self._threshold = Gauge(
            contract.DECISION_THRESHOLD,
            "Scores at or above this are predicted positive.",
            contract.DECISION_THRESHOLD_LABELS,
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def initialise(self, labels: Sequence[str], baseline: Mapping[str, float]) -> None:
        """Publish the baseline and create zero-valued prediction series.

        Series that exist from the start make `rate()` and `increase()` correct from the
        first scrape instead of missing the first predictions of each label.
        """
        i = self.identity
        for label in labels:
            self._baseline.labels(i.model, i.version, label).set(baseline.get(label, 0.0))
            self._predictions.labels(i.model, i.version, i.variant, label, "")

    def count_dropped_log_records(self, kind: str, reason: str, count: int) -> None:
        i = self.identity
        self._log_drops.labels(i.model, i.version, kind, reason).inc(count)

    def count_unverified_feedback(self, reason: str) -> None:
        i = self.identity
        self._unverified.labels(i.model, i.version, reason).inc()

    def publish_calibration(self, table: calibration.ScoreCalibration) -> None:
        """Export the training's reliability table, so the operator can estimate quality."""
        i = self.identity
        for bucket, edge in enumerate(table.upper_edges):
            le = _le(edge)
            rows = table.samples[bucket]
            observed = table.positives[bucket] / rows if rows else 0.0
            self._calibration.labels(i.model, i.version, le).set(observed)
            self._calibration_samples.labels(i.model, i.version, le).set(table.samples[bucket])
        self._threshold.labels(i.model, i.version).set(table.threshold)

    def observe_prediction(self, label: str, score: float, segment: str) -> None:
        i = self.identity
        self._predictions.labels(i.model, i.version, i.variant, label, segment).inc()
        self._score_child.observe(score)

    def count_anomaly(self, field: str, kind: str) -> None:
        self._anomalies.labels(self.identity.model, self.identity.version, field, kind).inc()

    def count_outcome(self, outcome: Outcome) -> None:
        """One label for a prediction made by `outcome.version` / `outcome.variant`."""
        model = self.identity.model
        self._outcomes.labels(
            model, outcome.version, outcome.variant, outcome.label, outcome.predicted
        ).inc()
        self._label_delay.labels(model, outcome.version, outcome.variant).observe(
            max(outcome.delay_seconds, 0.0)  # clocks of two replicas may disagree a little
        )


def _le(edge: float) -> str:
    """An `le` value as prometheus_client writes the histogram's own ("0.5", "1.0")."""
    return repr(float(edge))


@dataclass(frozen=True)
class Outcome:
    """A true label for an earlier prediction, and where and when that prediction was made."""

    label: str
    predicted: str
    version: str
    variant: str
    delay_seconds: float
