"""Every condition type, condition reason and phase, in one place.

Reasons are CamelCase machine-readable words (Kubernetes convention); messages carry
the human detail. Each value's docstring says when it is used.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    """The conditions of a ModelDeployment. Ready summarises the others."""

    READY = "Ready"
    """Every variant serves and the router routes; no rollout is failing."""
    PROGRESSING = "Progressing"
    """A variant's children are being created, rolled or removed, or a canary is under way
    (a rewrite of the router alone is not: Ready says whether routing works)."""
    DRIFTED = "Drifted"
    """The predicted-label distribution has left its baseline (after hysteresis)."""
    RETRAINING = "Retraining"
    """A retraining Job is running (True) or the last one failed (False with a reason)."""
    MONITORING_AVAILABLE = "MonitoringAvailable"
    """Prometheus answered the last check with enough data to decide."""


class Reason(StrEnum):
    """Why a condition has its status."""

    # Ready / Progressing
    RECONCILED = "Reconciled"
    """All children match the spec and are available."""
    CHILDREN_UPDATING = "ChildrenUpdating"
    """Children were created or changed and are not available yet."""
    VARIANT_UNAVAILABLE = "VariantUnavailable"
    """A variant's Deployment has no available replica; the message quotes its Deployment."""
    ROUTER_UNAVAILABLE = "RouterUnavailable"
    """The router has no available replica."""
    GATEWAY_API_MISSING = "GatewayAPIMissing"
    """router gateway-api was asked for, but the Gateway API CRDs are not installed."""
    BENTO_NOT_FOUND = "BentoNotFound"
    """A variant's bento is not in the bento store; its pods cannot start (the others serve)."""
    BENTO_STORE_FORBIDDEN = "BentoStoreForbidden"
    """The bento store refused the credentials (or their Secret is missing)."""
    BENTO_STORE_UNREACHABLE = "BentoStoreUnreachable"
    """The bento store did not answer."""
    INVALID_SPEC = "InvalidSpec"
    """The spec failed validation in the operator (the API server normally stops it first)."""
    CANARY_IN_PROGRESS = "CanaryInProgress"
    """A candidate is receiving a share of the traffic."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """The canary passed and approval is Manual: waiting for rollforward.io/approve."""
    PAUSED = "Paused"
    """A person paused the rollout (rollforward.io/pause), or inconclusive analysis did."""
    PROMOTED = "Promoted"
    """The candidate became the champion."""
    ROLLED_BACK = "RolledBack"
    """The candidate was removed and the champion has all the traffic again."""
    # Drifted
    DRIFT_DETECTED = "DriftDetected"
    """Enough consecutive checks breached the threshold."""
    NO_DRIFT = "NoDrift"
    """The distribution is within its threshold (or recovered)."""
    BREACH_PENDING = "BreachPending"
    """Some checks breached, fewer than consecutiveBreaches in a row."""
    CHECK_INCONCLUSIVE = "CheckInconclusive"
    """The last check could not decide; the previous decision stands."""
    # Retraining
    JOB_RUNNING = "JobRunning"
    """A retraining Job is running."""
    CANDIDATE_ACCEPTED = "CandidateAccepted"
    """The Job succeeded and its candidate passed the acceptance gate."""
    CANDIDATE_REJECTED = "CandidateRejected"
    """The Job succeeded but its candidate failed the acceptance gate; it is never deployed."""
    JOB_FAILED = "JobFailed"
    """The Job failed, timed out, or reported a malformed result."""
    RETRAIN_LIMITED = "RetrainLimited"
    """A trigger arrived during the cooldown or past the daily maximum."""
    IDLE = "Idle"
    """No retraining is under way."""
    # MonitoringAvailable
    METRICS_OK = "MetricsAvailable"
    """Prometheus answered with enough samples."""
    PROMETHEUS_UNREACHABLE = "PrometheusUnreachable"
    """The query failed (connection, timeout or HTTP error)."""
    NO_DATA = "NoData"
    """Prometheus answered with an empty result or NaN."""
    TOO_FEW_SAMPLES = "TooFewSamples"
    """Fewer predictions than minSamples in the window or the baseline."""
    NO_PROMETHEUS = "NoPrometheusConfigured"
    """Neither spec.monitoring.prometheusUrl nor an operator default is set."""
    PROMETHEUS_SECRET_MISSING = "PrometheusSecretMissing"
    """A Secret (or key) named in spec.monitoring, or an operator credential file, is missing."""
    PROMETHEUS_URL_INVALID = "PrometheusURLInvalid"
    """The Prometheus URL (spec.monitoring.prometheusUrl or the operator's) cannot be parsed:
    no host, a port that is not a number, an unclosed IPv6 bracket."""
    PROMETHEUS_TLS_ERROR = "PrometheusTLSError"
    """Prometheus's certificate did not verify against the configured CA (or the system's)."""
    PROMETHEUS_UNAUTHORIZED = "PrometheusUnauthorized"
    """Prometheus refused the credentials (HTTP 401 or 403)."""


class Phase(StrEnum):
    """A one-word summary of the conditions for humans and printer columns."""

    PENDING = "Pending"
    """Children are being created."""
    STABLE = "Stable"
    """The champion serves; no drift; nothing under way."""
    DEGRADED = "Degraded"
    """A variant or the router is unavailable."""
    DRIFTED = "Drifted"
    """Drift detected, and no retraining can start yet (manual trigger, cooldown or limit)."""
    RETRAINING = "Retraining"
    """A retraining Job is running."""
    CANARY = "Canary"
    """A retrained candidate is going through the canary steps."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """The canary passed; approval is Manual."""
    PAUSED = "Paused"
    """A rollout is paused."""
    PROMOTING = "Promoting"
    """The champion Deployment is rolling to the candidate's version."""
    ROLLED_BACK = "RolledBack"
    """The last candidate was rolled back; the champion serves."""


class EventReason(StrEnum):
    """The reason of each Kubernetes Event the operator posts on a ModelDeployment.

    A drift check that stops deciding posts its MonitoringAvailable condition reason
    (PrometheusUnreachable, NoData, TooFewSamples, NoPrometheusConfigured); the first check
    of a resource posts one only for a failure a person must fix, never for no data yet.
    Children's Events are Created<Kind>, Updated<Kind> and Deleted<Kind>
    (`child_event_reason`).
    """

    DRIFT_DETECTED = "DriftDetected"
    """The champion became Drifted."""
    DRIFT_RECOVERED = "DriftRecovered"
    """The champion is no longer Drifted."""
    MONITORING_AVAILABLE = "MonitoringAvailable"
    """A drift check decided again after checks that could not."""
    RETRAINING_STARTED = "RetrainingStarted"
    """A trigger started the first attempt of a retraining Job."""
    RETRAINING_RETRIED = "RetrainingRetried"
    """A failed attempt's backoff passed: the next attempt's Job started."""
    RETRAIN_LIMITED = "RetrainLimited"
    """A trigger arrived during the cooldown or past the daily maximum."""
    JOB_FAILED = "JobFailed"
    """A retraining attempt failed (will retry) or the last one did (gave up)."""
    CANDIDATE_ACCEPTED = "CandidateAccepted"
    """The Job's candidate passed the acceptance gate; the canary starts."""
    CANDIDATE_REJECTED = "CandidateRejected"
    """The Job's candidate failed the acceptance gate."""
    CANDIDATE_READY = "CandidateReady"
    """The candidate's Deployment serves; the first step's clock starts."""
    ANALYSIS_RESTARTED = "AnalysisRestarted"
    """spec.rollout changed mid-canary: the analysis starts again at step 1."""
    RESUMED = "Resumed"
    """rollforward.io/paused was removed: the canary continues."""
    CANARY_STEP = "CanaryStep"
    """A step's analysis passed: the candidate moves to the next weight."""
    PAUSED = "Paused"
    """Inconclusive analyses reached inconclusiveLimit: a person must resume or roll back."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """Every step passed; approval is Manual."""
    PROMOTING = "Promoting"
    """The champion Deployment starts rolling to the candidate's version."""
    PROMOTED = "Promoted"
    """The promotion finished: the candidate is the champion."""
    ROLLED_BACK = "RolledBack"
    """The candidate was removed; the champion has all the traffic again."""
    EXPERIMENT_CONCLUDED = "ExperimentConcluded"
    """The A/B experiment reached its verdict (or ended Inconclusive at maxDuration)."""
    CHALLENGER_HANDED_OVER = "ChallengerHandedOver"
    """A ChallengerBetter verdict with onChallengerBetter Promote: the challenger's version
    is the candidate, and its canary starts."""
    CHALLENGER_NOT_PROMOTED = "ChallengerNotPromoted"
    """A ChallengerBetter verdict with onChallengerBetter Promote that cannot be handed over
    (the version was rolled back or rejected before, or the challenger has no bento)."""


def child_event_reason(verb: str, kind: str) -> str:
    """Created<Kind>, Updated<Kind> or Deleted<Kind>: a child was written."""
    return f"{verb}{kind}"
