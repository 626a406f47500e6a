"""The rollforward_* Prometheus metrics of one serving process.

prometheus_client is imported when the metrics are created, not when this module is
imported: BentoML sets PROMETHEUS_MULTIPROC_DIR in its workers, and prometheus_client
picks single- or multi-process storage at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollforward.serving import contract

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Positive-class scores are probabilities; ten buckets resolve a shift of the score
# distribution without multiplying series per variant.
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


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
            "Delayed ground truth received through /feedback, by true and predicted label.",
            contract.OUTCOMES_LABELS,
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

    def initialise(self, labels: Sequence[str], baseline: Mapping[str, float]) -> None:
        """Publish the baseline and create zero-valued prediction series.

        Series that exist from the start make `rate()` and `increase()` correct from the
        first scrape instead of missing the first predictions of each label.
        """
        i = self.identity
        for label in labels:
            self._baseline.labels(i.model, i.version, label).set(baseline.get(label, 0.0))
            self._predictions.labels(i.model, i.version, i.variant, label, "")

    def observe_prediction(self, label: str, score: float, segment: str) -> None:
        i = self.identity
        self._predictions.labels(i.model, i.version, i.variant, label, segment).inc()
        self._score_child.observe(score)

    def count_anomaly(self, field: str, kind: str) -> None:
        self._anomalies.labels(self.identity.model, self.identity.version, field, kind).inc()

    def count_outcome(self, label: str, predicted: str) -> None:
        i = self.identity
        self._outcomes.labels(i.model, i.version, label, predicted).inc()
