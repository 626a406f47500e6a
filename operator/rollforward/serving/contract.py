"""The contract between a bento and the Rollforward operator.

The operator imports this module to build PromQL and to parse a retraining Job's
termination message, so it depends on the standard library and pydantic only.
Every name here is part of a public contract: renaming one breaks running clusters.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Environment variables the operator sets on every bento pod.
ENV_MODEL: Final = "ROLLFORWARD_MODEL"
ENV_VERSION: Final = "ROLLFORWARD_VERSION"
ENV_VARIANT: Final = "ROLLFORWARD_VARIANT"
VARIANT_HEADER: Final = "X-Rollforward-Variant"
"""Response header on every HTTP answer of a bento: its variant (ENV_VARIANT). The nginx
router passes it on as its served-by header, so a request the champion answered for another
variant (rollforward.routers.nginx_config, on fallback) names the champion."""
# Optional: the input field whose value becomes the `segment` label (unset: segment="").
ENV_SEGMENT_FIELD: Final = "ROLLFORWARD_SEGMENT_FIELD"
# Where a retraining Job writes its RetrainingResult (Kubernetes reads it after exit).
ENV_FEEDBACK_SECRET: Final = "ROLLFORWARD_FEEDBACK_SECRET"
"""The key that signs prediction ids; the operator sets it from the ModelDeployment's
feedback-key Secret, so every replica and every version of one ModelDeployment shares it."""
FEEDBACK_SECRET_MIN_LENGTH: Final = 16
"""Shorter keys are treated as none: a guessable key lets anyone forge outcomes."""
ENV_PREDICTION_LOG_PREFIX: Final = "ROLLFORWARD_PREDICTION_LOG_PREFIX"
"""Where in the bento store's bucket one ModelDeployment's prediction log lives, with its
feedback claims: `<prefix>/<model>/...` (rollforward.serving.prediction_log). The operator sets
it, to `logs/<namespace>/<name>` (rollforward.bentostore.location.log_prefix), on every bento
container and on every retraining Job, so a ModelDeployment's bentos write, and its Jobs read,
a log no other ModelDeployment shares, whatever model name they serve."""
DEFAULT_PREDICTION_LOG_PREFIX: Final = "logs"
"""The log's root when nothing sets ENV_PREDICTION_LOG_PREFIX (a bento served by hand), and
the first segment of every prefix the operator sets."""
ENV_TERMINATION_MESSAGE_PATH: Final = "ROLLFORWARD_TERMINATION_MESSAGE_PATH"
ENV_DRIFT_BEGAN_AT: Final = "ROLLFORWARD_DRIFT_BEGAN_AT"
"""On a retraining Job: when the data of the open drift episode began (ISO 8601, UTC), the start
of the window of the episode's first breaching check; unset when no episode is open. A Job that
trains on logged data can start its window there, so it learns what production sees now."""
DEFAULT_TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
# Kubernetes truncates a termination message beyond this many bytes.
TERMINATION_MESSAGE_LIMIT_BYTES: Final = 4096

# Serving endpoints (BentoML's defaults, kept here so the operator's probes agree).
DEFAULT_PORT: Final = 3000
READINESS_PATH: Final = "/readyz"
LIVENESS_PATH: Final = "/livez"
METRICS_PATH: Final = "/metrics"
PREDICT_PATH: Final = "/predict"
FEEDBACK_PATH: Final = "/feedback"

# Metric names exported by rollforward.serving.
PREDICTIONS_TOTAL: Final = "rollforward_predictions_total"
PREDICTION_SCORE: Final = "rollforward_prediction_score"
BASELINE_RATIO: Final = "rollforward_baseline_ratio"
INPUT_ANOMALIES_TOTAL: Final = "rollforward_input_anomalies_total"
# Outcomes and label delays carry the variant and version that made the prediction (read
# from its signed id), not those of the process that received the label.
OUTCOMES_TOTAL: Final = "rollforward_outcomes_total"
LABEL_DELAY_SECONDS: Final = "rollforward_label_delay_seconds"
# 1 for each serving process: names its variant, so series that lack the label (BentoML's
# request metrics) are joined to it on the (namespace, pod) every scrape config adds.
VARIANT_INFO: Final = "rollforward_variant_info"
# The training's reliability table of the score (rollforward.serving.calibration), bucket by
# bucket (`le` as in rollforward_prediction_score): the observed positive rate on validation
# (0 for a bucket no validation row reached),
# the validation rows behind it, and the score threshold of a positive prediction.
SCORE_CALIBRATION: Final = "rollforward_score_calibration"
SCORE_CALIBRATION_SAMPLES: Final = "rollforward_score_calibration_samples"
DECISION_THRESHOLD: Final = "rollforward_decision_threshold"
# Prediction and feedback log records that never reached the store (rollforward.serving.
# prediction_log): kind is predictions or feedback, reason buffer_full or store_error.
LOG_RECORDS_DROPPED_TOTAL: Final = "rollforward_log_records_dropped_total"
# Feedback labels counted without the bento store's once-per-prediction claim (rollforward.
# serving.feedback_claims), so only the receiving process checked them for duplicates:
# reason is no_store, store_error, backing_off or unsupported.
FEEDBACK_UNVERIFIED_TOTAL: Final = "rollforward_feedback_unverified_total"

# Their label names, in the order the helper declares them.
PREDICTIONS_LABELS: Final = ("model", "version", "variant", "label", "segment")
PREDICTION_SCORE_LABELS: Final = ("model", "version", "variant")
BASELINE_RATIO_LABELS: Final = ("model", "version", "label")
INPUT_ANOMALIES_LABELS: Final = ("model", "version", "field", "kind")
OUTCOMES_LABELS: Final = ("model", "version", "variant", "label", "predicted")
LABEL_DELAY_LABELS: Final = ("model", "version", "variant")
VARIANT_INFO_LABELS: Final = ("model", "version", "variant")
SCORE_CALIBRATION_LABELS: Final = ("model", "version", "le")
DECISION_THRESHOLD_LABELS: Final = ("model", "version")
LOG_RECORDS_DROPPED_LABELS: Final = ("model", "version", "kind", "reason")
FEEDBACK_UNVERIFIED_LABELS: Final = ("model", "version", "reason")

# BentoML's own HTTP metrics, which the operator reads for error rate and latency.
# Labels: endpoint, http_response_code, runner_name, service_name, service_version.
BENTOML_REQUESTS_TOTAL: Final = "bentoml_service_request_total"
BENTOML_REQUEST_DURATION: Final = "bentoml_service_request_duration_seconds"

# The `segment` value for records whose segment field holds something unexpected.
OTHER_SEGMENT: Final = "other"


class AnomalyKind(StrEnum):
    """The `kind` label of rollforward_input_anomalies_total."""

    # A field the model uses was absent; it was imputed.
    MISSING = "missing"
    # A field was JSON null; it was imputed.
    NULL = "null"
    # A value had the wrong JSON type and could not be coerced; it was imputed.
    WRONG_TYPE = "wrong_type"
    # A value had the wrong JSON type but was coerced (e.g. "12" for a number).
    COERCED = "coerced"
    # A categorical value the model never saw in training; it was ignored by the encoder.
    UNKNOWN_CATEGORY = "unknown_category"
    # A number outside the plausible range (negative counts, NaN, infinity); it was clipped.
    OUT_OF_RANGE = "out_of_range"
    # A field the model does not know; it was ignored.
    EXTRA = "extra"
    # Feedback named a prediction id this bento did not issue.
    UNKNOWN_PREDICTION_ID = "unknown_prediction_id"
    # Feedback for a prediction id that already received feedback, on this process or (through
    # the bento store's claim marker) on any replica or earlier pod; it was not counted again.
    DUPLICATE_FEEDBACK = "duplicate_feedback"


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class EvaluationMetrics(_CamelModel):
    """Quality of a model on one evaluation set."""

    auc: float | None = Field(description="Area under the ROC curve; null with one class only.")
    accuracy: float
    recall: float
    samples: int


class RetrainingMetrics(_CamelModel):
    """Quality on a random holdout and on the most recent slice of the data."""

    holdout: EvaluationMetrics
    recent: EvaluationMetrics
    # The champion's quality on the same recent slice, when it could be loaded.
    champion_recent: EvaluationMetrics | None = None


DataSource = Literal["generated", "prediction-log"]


class DataWindow(_CamelModel):
    """The data a candidate was trained and evaluated on, as its result names it."""

    # generated (synthetic scenarios) or prediction-log (logged predictions with their labels).
    source: DataSource
    # The window's bounds; for generated data, the sign-up times of the rows used.
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    # Predictions logged in the window, labelled or not (generated: the rows drawn).
    predictions: int = Field(default=0, ge=0)
    # Rows with a label: what the candidate was trained and evaluated on.
    labelled: int = Field(default=0, ge=0)
    # prediction-log: the drift onset the operator named (ROLLFORWARD_DRIFT_BEGAN_AT), when
    # the window starts there rather than `window-days` before the end.
    drift_began_at: datetime | None = None
    # generated: the scenario drawn.
    scenario: str = ""


class RetrainingResult(_CamelModel):
    """What a retraining Job reports through its termination message."""

    # The new bento tag (name:version); empty when training failed before a build.
    version: str
    # Whether the candidate met the acceptance criteria; reasons say why not.
    accepted: bool
    reasons: list[str] = Field(default_factory=list)
    metrics: RetrainingMetrics | None = None
    # The predicted-label distribution on the validation set (label -> ratio).
    baseline_distribution: dict[str, float] = Field(default_factory=dict)
    trained_at: datetime
    training_rows: int = 0
    # Where the bento was exported in the bento store (s3://bucket/key); empty without a store.
    stored_at: str = ""
    # The data window the candidate was trained on (absent from older entrypoints).
    data_window: DataWindow | None = None

    def to_termination_message(self) -> str:
        """Compact JSON that fits Kubernetes' termination-message limit.

        Reasons are the only unbounded part, so they are shortened until the message fits.
        """
        result = self
        while True:
            text = result.model_dump_json(by_alias=True, exclude_none=True)
            if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT_BYTES or not result.reasons:
                return text
            result = result.model_copy(update={"reasons": _shorten(result.reasons)})

    @classmethod
    def from_termination_message(cls, text: str) -> RetrainingResult:
        return cls.model_validate(json.loads(text))


def _shorten(reasons: list[str]) -> list[str]:
    longest = max(len(r) for r in reasons)
    if longest > 80:
        return [r if len(r) <= longest // 2 else r[: longest // 2] + "…" for r in reasons]
    return reasons[:-1]
