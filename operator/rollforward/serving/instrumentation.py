"""The one object a bento calls: it counts, logs and labels predictions and feedback.

A bento keeps its own model and feature code; it hands each record's anomalies and each
prediction to `Instrumentation`, which turns them into the metric contract, structured log
lines and self-describing prediction ids.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rollforward.serving.calibration import ScoreCalibration
from rollforward.serving.contract import (
    ENV_FEEDBACK_SECRET,
    FEEDBACK_SECRET_MIN_LENGTH,
    OTHER_SEGMENT,
    AnomalyKind,
)
from rollforward.serving.feedback import parse_feedback
from rollforward.serving.feedback_claims import (
    Claim,
    ClaimResult,
    FeedbackClaims,
    FeedbackDecision,
    UnverifiedReason,
    decide,
)
from rollforward.serving.inputs import InputAnomaly
from rollforward.serving.metrics import MetricIdentity, Outcome, ServingMetrics
from rollforward.serving.prediction_ids import IssuedPrediction, PredictionIdCodec, RecentIds
from rollforward.serving.prediction_log import (
    LogIdentity,
    LogSettings,
    LogStoreSettings,
    PredictionLog,
)
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
        prediction_log: PredictionLog | None = None,
        claims: FeedbackClaims | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.prediction_log = prediction_log
        self.claims = claims
        self._clock = clock
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
            prediction_log=_prediction_log(settings, metrics),
            claims=_feedback_claims(settings),
        )

    def publish_calibration(self, recorded: Any) -> bool:
        """Export the score calibration the training recorded (model metadata `calibration`);
        False, and nothing exported, when there is none or it does not parse (older models)."""
        if self._metrics is None or not isinstance(recorded, Mapping):
            return False
        try:
            table = ScoreCalibration.model_validate(recorded)
        except ValidationError as error:
            self._log("calibration_invalid", error=str(error)[:300])
            return False
        self._metrics.publish_calibration(table)
        return True

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
        if self._codec is None:
            return ""
        s = self.settings
        prediction_id = self._codec.issue(label, s.variant, s.version, self._clock())
        if self.prediction_log is not None:
            self.prediction_log.prediction(prediction_id, record, label, score)
        return prediction_id

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
        first_here = self._fed_back.add(parsed.prediction_id)
        claim = self._claim(parsed.prediction_id, predicted, parsed.label) if first_here else None
        decision = decide(first_here, claim)
        if decision is FeedbackDecision.DUPLICATE:
            return self._reject(
                InputAnomaly("predictionId", AnomalyKind.DUPLICATE_FEEDBACK, parsed.prediction_id)
            )
        if decision is FeedbackDecision.COUNT_UNVERIFIED and claim is not None:
            self._count_unverified(claim)
        self._count_outcome(parsed.label, predicted)
        if self.prediction_log is not None:
            self.prediction_log.feedback(parsed.prediction_id, parsed.label)
        return FeedbackVerdict(accepted=True)

    def reject_payload(self, detail: str) -> None:
        """Count a /feedback body that holds no feedback items at all (wrong shape, too many)."""
        self._reject(InputAnomaly("feedback", AnomalyKind.WRONG_TYPE, detail[:64]))

    def _claim(self, prediction_id: str, predicted: IssuedPrediction, label: str) -> Claim:
        if self.claims is None:
            return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.NO_STORE)
        return self.claims.claim(prediction_id, predicted.issued_at, label)

    def _count_unverified(self, claim: Claim) -> None:
        reason = claim.reason or UnverifiedReason.STORE_ERROR
        if self._metrics is not None:
            self._metrics.count_unverified_feedback(reason)
        if claim.detail:
            self._log("feedback_claim_failed", reason=str(reason), detail=claim.detail)

    def _count_outcome(self, label: str, predicted: IssuedPrediction) -> None:
        if self._metrics is not None:
            outcome = Outcome(
                label=label,
                predicted=predicted.label,
                version=predicted.version,
                variant=predicted.variant,
                delay_seconds=self._clock() - predicted.issued_at,
            )
            self._metrics.count_outcome(outcome)

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


def _prediction_log(
    settings: ServingSettings, metrics: ServingMetrics | None
) -> PredictionLog | None:
    """The log of this process, when a store is configured and logging is not turned off."""
    log_settings = LogSettings()
    store = LogStoreSettings().store()
    if store is None or not log_settings.enabled:
        return None
    return PredictionLog(
        store,
        LogIdentity(settings.model, settings.version, settings.variant),
        log_settings,
        on_drop=metrics.count_dropped_log_records if metrics is not None else None,
    )


def _feedback_claims(settings: ServingSettings) -> FeedbackClaims | None:
    """The claims of this process, when a store is configured and claims are not turned off."""
    store = LogStoreSettings().store()
    if store is None or not settings.feedback_claims:
        return None
    return FeedbackClaims(
        dataclasses.replace(store, timeout=settings.feedback_claim_timeout_seconds),
        LogSettings().prefix,
        settings.model,
        backoff_seconds=settings.feedback_claim_backoff_seconds,
    )


def _default_registry() -> Any:
    """None in multiprocess mode (values live in files), else the global registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    from prometheus_client import REGISTRY

    return REGISTRY
