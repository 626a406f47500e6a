"""The observed state of a ModelDeployment. Written by the operator only, once per reconcile.

Progress lives here and nowhere else, so a restarted operator continues where it stopped.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from rollforward.api.base import StatusModel
from rollforward.api.reasons import Phase

HISTORY_LIMIT = 20
"""Most entries kept in status.history; older ones are dropped first."""


class HistoryOutcome(StrEnum):
    """What became of a version in status.history."""

    SERVING = "Serving"
    """The initial champion, serving since the resource was created."""
    CANARY = "Canary"
    """Accepted by the gate; the canary is under way."""
    PROMOTED = "Promoted"
    """The candidate became the champion."""
    ROLLED_BACK = "RolledBack"
    """The canary failed or was aborted; the candidate was removed."""
    REJECTED = "Rejected"
    """The acceptance gate turned the candidate down; it never served."""
    FAILED = "Failed"
    """The retraining Job gave up; no candidate."""
    SUPERSEDED = "Superseded"
    """A former champion, replaced by a promotion."""


class HeldReason(StrEnum):
    """Why a canary makes no step (status.rollout.heldReason; empty when it is not held)."""

    PAUSED = "paused by rollforward.io/paused"
    """A person set the pause annotation."""
    INCONCLUSIVE = "{count} inconclusive analyses in a row; a person must resume or roll back"
    """inconclusiveLimit reached (a template: format it with the count)."""


class Condition(StatusModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str
    """Ready, Progressing, Drifted, Retraining or MonitoringAvailable."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str
    """CamelCase reason."""
    message: str = ""
    """Human-readable detail."""
    last_transition_time: datetime
    """When status last changed."""
    observed_generation: int = 0
    """The metadata.generation this condition was computed for."""


class VariantStatus(StatusModel):
    """One variant as it runs now."""

    name: str
    """Variant name."""
    role: str
    """champion, challenger, shadow or candidate."""
    version: str
    """The bento tag or image serving now (may differ from spec after a promotion)."""
    weight: int = 0
    """Traffic percentage applied to the router."""
    replicas: int = 0
    """Desired replicas."""
    ready_replicas: int = 0
    """Replicas ready to serve."""
    reason: str | None = None
    """Why this variant cannot serve (BentoNotFound, BentoStoreForbidden,
    BentoStoreUnreachable); empty when nothing stops it."""
    message: str | None = None
    """Human detail of the reason."""


class LabelProportion(StatusModel):
    """Baseline against current share of one predicted label."""

    label: str
    """Predicted label."""
    baseline: float
    """Share in the baseline."""
    current: float
    """Share in the current window."""


class DriftVerdict(StrEnum):
    """The outcome of one drift check."""

    DRIFT = "Drift"
    """The current window differs significantly from the baseline."""
    NO_DRIFT = "NoDrift"
    """The check ran and found no significant difference."""
    INCONCLUSIVE = "Inconclusive"
    """The check could not run (missing or too little data); it is evidence of nothing."""


class SegmentReport(StatusModel):
    """The drift check of one segment."""

    segment: str
    """Segment label value."""
    outcome: DriftVerdict
    """Drift, NoDrift or Inconclusive."""
    score: float | None = None
    """Statistic value."""
    p_value: float | None = None
    """Raw p-value."""
    adjusted_p_value: float | None = None
    """Holm-adjusted p-value across segments."""
    effect: float | None = None
    """Total variation distance from the baseline (0.05 = 5 points of label share)."""
    effect_lower: float | None = None
    """Lower end of the effect's confidence interval; drift needs it >= minEffect."""
    current_samples: int = 0
    """Predictions in the current window."""


class EffectReport(StatusModel):
    """How far the predicted-label distribution moved, with its confidence interval."""

    measure: str = "totalVariation"
    """totalVariation: half the sum of absolute label-share differences, in [0, 1]."""
    estimate: float
    """Observed distance (0.05 = 5 points of label share moved)."""
    lower: float
    """Lower end of the simultaneous confidence interval."""
    upper: float
    """Upper end of the simultaneous confidence interval."""
    confidence: float
    """Confidence level of the interval: 1 - significance."""
    minimum: float
    """spec.drift.minEffect: drift needs lower >= minimum."""


class DriftCheckReport(StatusModel):
    """The last drift check."""

    outcome: DriftVerdict
    """Drift, NoDrift or Inconclusive."""
    reason: str = ""
    """Why, in words."""
    statistic: str
    """chiSquare, psi or jensenShannon."""
    score: float | None = None
    """Statistic value (chi-square statistic, PSI or JS)."""
    threshold: float | None = None
    """Threshold the score was compared with (psi/js) or the significance (chiSquare)."""
    p_value: float | None = None
    """p-value of the test."""
    noise_floor: float | None = None
    """Expected score under no drift for these sample sizes."""
    effect: EffectReport | None = None
    """Effect size of the headline segment: total variation distance and its interval."""
    false_episode_days: float | None = None
    """Expected days between false Drifted episodes on noise alone, at this window, interval,
    consecutiveBreaches and a per-check false-alarm rate of significance (overlapping windows
    accounted for); minEffect only makes them rarer. 1e9 means never."""
    current_samples: int = 0
    """n: predictions in the current window."""
    baseline_samples: int | None = None
    """m: predictions in the baseline window (none for the training baseline)."""
    window: str
    """Current window length."""
    baseline: str
    """training, reference or seasonal."""
    version: str = ""
    """Version whose predictions were checked."""
    labels: list[LabelProportion] = Field(default_factory=list)
    """Per-label proportions."""
    segments: list[SegmentReport] = Field(default_factory=list)
    """Per-segment results, when segmentLabel is set."""
    checked_at: datetime
    """When the check ran."""


class DriftTracking(StatusModel):
    """Hysteresis state of the drift check, carried between checks so a restart neither
    forgets nor repeats (see rollforward.drift.hysteresis)."""

    drifted: bool = False
    """The current value of the Drifted condition."""
    breach_streak: int = Field(default=0, ge=0)
    """Consecutive Drift verdicts, not counting Inconclusive checks in between."""
    clean_streak: int = Field(default=0, ge=0)
    """Consecutive NoDrift verdicts, not counting Inconclusive checks in between."""
    inconclusive_streak: int = Field(default=0, ge=0)
    """Consecutive Inconclusive verdicts; reset by any conclusive check."""
    checks: int = Field(default=0, ge=0)
    """Checks seen since tracking started, conclusive or not."""
    last_check_at: datetime | None = None
    """When the last check ran; the next runs one spec.drift.interval later."""
    drifted_since: datetime | None = None
    """When Drifted last became True."""


class JobPhase(StrEnum):
    """Where a retraining attempt is."""

    RUNNING = "Running"
    """The Job exists and has not finished."""
    SUCCEEDED = "Succeeded"
    """The Job finished and its result passed the acceptance gate."""
    REJECTED = "Rejected"
    """The Job finished but the candidate failed the gate."""
    FAILED = "Failed"
    """The Job failed, timed out or reported a malformed result."""


class RetrainingStatus(StatusModel):
    """The current or last retraining."""

    trigger_id: str
    """Deterministic id of the trigger; the Job name derives from it."""
    trigger: str
    """onDrift, schedule or manual."""
    job_name: str
    """Name of the Job of the current attempt."""
    attempt: int = 1
    """Attempt number for this trigger."""
    phase: JobPhase
    """Running, Succeeded, Rejected or Failed."""
    started_at: datetime
    """When the current attempt's Job was created."""
    finished_at: datetime | None = None
    """When it ended."""
    next_attempt_at: datetime | None = None
    """After a failure with attempts left: when the next attempt may start."""
    candidate_version: str | None = None
    """The version the Job reported."""
    message: str = ""
    """Why it ended this way."""


class AnalysisResult(StatusModel):
    """One measurement of a canary analysis."""

    name: str
    """errorRate, latencyP99, predictionDrift, or a custom metric's name."""
    outcome: Literal["Successful", "Failed", "Inconclusive"]
    """Successful, Failed or Inconclusive."""
    value: float | None = None
    """Measured value."""
    message: str = ""
    """Detail."""


class BlastRadius(StatusModel):
    """What the candidate cost users during one canary, as Prometheus counted it."""

    requests: int = 0
    """Requests the candidate served since it started serving."""
    failed: int = 0
    """Of those, the failed ones (5xx)."""
    first_failure_at: datetime | None = None
    """When a check first saw a failed request of the candidate (late by up to one scrape
    interval plus one analysis interval)."""
    ended_at: datetime | None = None
    """When the canary was rolled back or promoted."""


class RolloutStatus(StatusModel):
    """A canary under way."""

    candidate_version: str
    """The version being canaried."""
    trigger_id: str
    """The trigger that produced it."""
    candidate_ready: bool = False
    """The candidate's Deployment became available; until then it gets no traffic and the
    first step's clock does not run."""
    step: int = 0
    """Index of the current step in spec.rollout.steps."""
    step_started_at: datetime
    """When the current step (or its latest re-measurement) started."""
    spec_hash: str
    """Hash of spec.rollout when the analysis started; a change restarts the analysis."""
    inconclusive_count: int = 0
    """Inconclusive analyses in a row at this step."""
    analysis: list[AnalysisResult] = Field(default_factory=list)
    """The last analysis of this step."""
    promoting: bool = False
    """The champion Deployment is rolling to the candidate version."""
    awaiting_approval: bool = False
    """Every step passed; approval is Manual and no approval has arrived yet."""
    held_reason: str = ""
    """Why the canary makes no step: paused by a person, or too many inconclusive analyses."""
    serving_since: datetime | None = None
    """When the candidate started to get traffic: the start of the blast-radius count."""
    blast_radius: BlastRadius = Field(default_factory=BlastRadius)
    """The candidate's requests and failures so far in this canary."""


class HistoryEntry(StatusModel):
    """One version's story."""

    version: str
    """Bento tag or image."""
    trigger: str
    """onDrift, schedule, manual, or initial."""
    trigger_id: str = ""
    """Trigger id."""
    outcome: HistoryOutcome
    """What happened to the version."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Reported metrics (e.g. holdoutAuc, recentAuc)."""
    message: str = ""
    """Why."""
    started_at: datetime
    """When the version appeared."""
    finished_at: datetime | None = None
    """When its outcome was decided."""
    blast_radius: BlastRadius | None = None
    """For a canaried version: what its canary cost users."""


class ModelDeploymentStatus(StatusModel):
    """Observed state. Everything the operator needs to continue after a restart."""

    observed_generation: int = 0
    """The metadata.generation the status describes."""
    phase: Phase = Phase.PENDING
    """A one-word summary."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready, Progressing, Drifted, Retraining, MonitoringAvailable."""
    champion: str = ""
    """Champion version serving now."""
    champion_source: str = ""
    """The champion's bento or image in spec when status.champion was set. When spec's
    differs, Git changed the champion, and the spec wins over a promoted version."""
    challenger: str = ""
    """Challenger or candidate version serving now, if any."""
    split: str = ""
    """Applied traffic split, e.g. "champion=90 challenger=10"."""
    variants: list[VariantStatus] = Field(default_factory=list)
    """Each variant as it runs."""
    drift: DriftCheckReport | None = None
    """The last drift check."""
    drift_tracking: DriftTracking = Field(default_factory=DriftTracking)
    """Hysteresis state."""
    drift_score: str = ""
    """Short drift summary for printer columns, e.g. "p=0.002" or "0.31/0.10"."""
    promoted_at: datetime | None = None
    """When the serving champion version was promoted (start of the reference baseline)."""
    reference_counts: dict[str, dict[str, float]] | None = None
    """Predicted-label counts of the reference window after promotion, by segment ("" when
    segments are not used); measured once the window closed, then kept for every check."""
    retraining: RetrainingStatus | None = None
    """The current or last retraining."""
    retrain_starts: list[datetime] = Field(default_factory=list)
    """Start times of retraining Jobs in the last 24 hours (for maxPerDay and cooldown)."""
    handled_requests: list[str] = Field(default_factory=list)
    """Values of request annotations (retrain, approve, rollback) already acted on."""
    rollout: RolloutStatus | None = None
    """The canary under way."""
    last_rollback: str = ""
    """Why the last candidate was rolled back."""
    failed_versions: list[str] = Field(default_factory=list)
    """Versions rolled back or rejected; never deployed again."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """The most recent versions, newest last."""
