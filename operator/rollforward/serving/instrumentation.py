"""The one object a bento calls: it counts, logs and labels predictions and feedback.

A bento keeps its own model and feature code; it hands each record's anomalies and each
prediction to `Instrumentation`, which turns them into the metric contract, structured log
lines and self-describing prediction ids.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollforward.serving.contract import (
    ENV_FEEDBACK_SECRET,
    FEEDBACK_SECRET_MIN_LENGTH,
    OTHER_SEGMENT,
    AnomalyKind,
)
from rollforward.serving.feedback import FeedbackItem, parse_feedback
from rollforward.serving.inputs import InputAnomaly
from rollforward.serving.metrics import MetricIdentity, ServingMetrics
from rollforward.serving.prediction_ids import PredictionIdCodec, RecentIds
from rollforward.serving.settings import ServingSettings

_SEGMENT_VALUE_LIMIT = 48


@dataclass(frozen=True)
class FeedbackVerdict:
    """Whether one feedback item was counted, and why not."""

    accepted: bool
    reason: str = ""


class Instrumentation:
    """Metrics, logs and prediction ids for one serving process of one model version."""

    def __init__(
        self,
        settings: ServingSettings,
        labels: Sequence[str],
        positive_label: str,
        baseline: Mapping[str, float],
        *,
        metrics: ServingMetrics | None,
        logger: logging.Logger,
    ) -> None:
        self.settings = settings
        self.labels = tuple(labels)
        self.positive_label = positive_label
        self._metrics = metrics
        self._logger = logger
        key = settings.feedback_secret
        # Never a default key: one anyone can guess (the model name) lets anyone forge outcomes.
        self._codec = (
            PredictionIdCodec(key, labels) if len(key) >= FEEDBACK_SECRET_MIN_LENGTH else None
        )
        self._fed_back = RecentIds(settings.feedback_memory)
        self._segments: set[str] = set()
        if metrics is not None:
            metrics.initialise(self.labels, baseline)

    @classmethod
    def from_environment(
        cls,
        labels: Sequence[str],
        positive_label: str,
        baseline: Mapping[str, float],
        *,
        default_model: str,
        default_version: str,
        logger: logging.Logger | None = None,
    ) -> Instrumentation:
        """Read ROLLFORWARD_* settings; metrics go to BentoML's multiprocess /metrics."""
        settings = ServingSettings()
        settings = settings.model_copy(
            update={
                "model": settings.model or default_model,
                "version": settings.version or default_version,
            }
        )
        metrics = None
        if settings.instrument:
            identity = MetricIdentity(settings.model, settings.version, settings.variant)
            metrics = ServingMetrics(identity, _default_registry())
        return cls(
            settings,
            labels,
            positive_label,
            baseline,
            metrics=metrics,
            logger=logger or logging.getLogger("rollforward.serving"),
        )

    @property
    def enabled(self) -> bool:
        return self._metrics is not None

    @property
    def feedback_enabled(self) -> bool:
        """Whether prediction ids are signed, so /feedback can verify them."""
        return self._codec is not None

    @property
    def feedback_disabled_message(self) -> str:
        return (
            f"feedback is disabled: no signing key ({ENV_FEEDBACK_SECRET} is unset or shorter "
            f"than {FEEDBACK_SECRET_MIN_LENGTH} characters; the operator sets it from the "
            "ModelDeployment's <name>-feedback-key Secret)"
        )

    def note_anomalies(self, anomalies: Sequence[InputAnomaly], index: int = 0) -> None:
        """Count each oddity of one record and log them as one JSON line."""
        if self._metrics is None or not anomalies:
            return
        for anomaly in anomalies:
            self._metrics.count_anomaly(anomaly.field, anomaly.kind)
        self._log(
            "input_anomalies",
            record=index,
            anomalies=[
                {"field": a.field, "kind": str(a.kind), "detail": a.detail} for a in anomalies
            ],
        )

    def record_prediction(self, label: str, score: float, record: Mapping[str, Any]) -> str:
        """Count one prediction; return its id for later feedback ("" when disabled)."""
        if self._metrics is None:
            return ""
        self._metrics.observe_prediction(label, score, self._segment(record))
        return self._codec.issue(label) if self._codec is not None else ""

    def record_feedback(self, item: Any) -> FeedbackVerdict:
        """Count delayed ground truth for an earlier prediction; never raises."""
        parsed = parse_feedback(item, self.labels, self.positive_label)
        if isinstance(parsed, InputAnomaly):
            return self._reject(parsed)
        if self._codec is None:
            return FeedbackVerdict(accepted=False, reason=self.feedback_disabled_message)
        predicted = self._codec.read(parsed.prediction_id)
        if predicted is None:
            return self._reject(
                InputAnomaly(
                    "predictionId", AnomalyKind.UNKNOWN_PREDICTION_ID, parsed.prediction_id[:64]
                )
            )
        if not self._fed_back.add(parsed.prediction_id):
            return self._reject(
                InputAnomaly("predictionId", AnomalyKind.DUPLICATE_FEEDBACK, parsed.prediction_id)
            )
        self._count_outcome(parsed, predicted)
        return FeedbackVerdict(accepted=True)

    def _count_outcome(self, item: FeedbackItem, predicted: str) -> None:
        if self._metrics is not None:
            self._metrics.count_outcome(item.label, predicted)

    def _reject(self, anomaly: InputAnomaly) -> FeedbackVerdict:
        if self._metrics is not None:
            self._metrics.count_anomaly(anomaly.field, anomaly.kind)
            self._log(
                "feedback_rejected",
                field=anomaly.field,
                kind=str(anomaly.kind),
                detail=anomaly.detail,
            )
        return FeedbackVerdict(accepted=False, reason=f"{anomaly.field}: {anomaly.kind}")

    def _segment(self, record: Mapping[str, Any]) -> str:
        field = self.settings.segment_field
        if not field:
            return ""
        raw = record.get(field)
        if raw is None:
            return ""
        if isinstance(raw, dict | list):
            return OTHER_SEGMENT
        value = str(raw).strip()[:_SEGMENT_VALUE_LIMIT]
        if value in self._segments:
            return value
        if len(self._segments) >= self.settings.max_segments:
            return OTHER_SEGMENT
        self._segments.add(value)
        return value

    def _log(self, event: str, **fields: Any) -> None:
        s = self.settings
        line = {"event": event, "model": s.model, "version": s.version, "variant": s.variant}
        self._logger.warning(json.dumps({**line, **fields}, default=str))


def _default_registry() -> Any:
    """None in multiprocess mode (values live in files), else the global registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    from prometheus_client import REGISTRY

    return REGISTRY
