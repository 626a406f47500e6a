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


class MetricEstimate(StatusModel):
    """One expected metric and its 95% interval."""

    value: float
    """The expected value (0.91 = 91%)."""
    lower: float
    """Lower end of the 95% interval: the realized value's scatter plus the calibration's
    own uncertainty."""
    upper: float
    """Upper end of the 95% interval."""


class VariantQualityEstimate(StatusModel):
    """Expected quality of one variant's predictions in the window, before labels arrive."""

    variant: str
    """Variant name."""
    version: str
    """The version whose predictions were estimated."""
    samples: int = 0
    """Predictions in the window."""
    accuracy: MetricEstimate | None = None
    """Expected share of correct predictions."""
    precision: MetricEstimate | None = None
    """Expected share of positive predictions that are truly positive."""
    recall: MetricEstimate | None = None
    """Expected share of true positives that are predicted positive."""
    reason: str = ""
    """Why there is no estimate (no calibration exported, no predictions); empty otherwise."""


class QualityEstimation(StatusModel):
    """Confidence-based estimate of each variant's quality from its score histogram and the
    training's calibration. Valid under covariate shift, not under concept drift: read it
    beside the drift check and the realized quality from feedback."""

    window: str
    """The window of predictions estimated (spec.drift.window)."""
    estimated_at: datetime
    """The aligned check time of the estimate."""
    variants: list[VariantQualityEstimate] = Field(default_factory=list)
    """One entry per serving variant."""
    reason: str = ""
    """Why nothing could be estimated (Prometheus unreachable); empty otherwise."""


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
    drift_began_at: datetime | None = None
    """Where the data of the current breaches or drift episode began: the start of the window of
    its first breaching check. A retraining Job is told (ROLLFORWARD_DRIFT_BEGAN_AT), so it can
    train on what production has seen since."""


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


class TrainingData(StatusModel):
    """The data a candidate was trained and evaluated on, as its Job reported it."""

    source: str
    """generated (synthetic scenarios) or prediction-log (logged predictions with labels)."""
    start: datetime | None = None
    """The window's first moment."""
    end: datetime | None = None
    """The window's last moment."""
    predictions: int = Field(default=0, ge=0)
    """Predictions logged in the window, labelled or not."""
    labelled: int = Field(default=0, ge=0)
    """Rows with a label: what the candidate was trained and evaluated on."""
    drift_began_at: datetime | None = None
    """Set when the window starts at the drift onset the Job was told."""


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
    training_data: TrainingData | None = None
    """The data window the Job reported its candidate was trained on."""
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
    """onDrift, schedule, manual, initial, or experiment (a ChallengerBetter verdict with
    onChallengerBetter Promote)."""
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


class OutcomeCounts(StatusModel):
    """Labels received for one variant and version since quality tracking started."""

    variant: str
    """The variant that made the predictions."""
    version: str
    """The version that made them."""
    true_positive: int = 0
    """Predicted positive, and the label was positive."""
    false_positive: int = 0
    """Predicted positive, but the label was negative."""
    true_negative: int = 0
    """Predicted negative, and the label was negative."""
    false_negative: int = 0
    """Predicted negative, but the label was positive."""
    predictions: int = 0
    """Predictions served over the same intervals (for label coverage)."""
    label_delay_seconds: float = 0.0
    """Sum of the labels' delays (prediction to label)."""


class VariantQuality(StatusModel):
    """Realized quality of one variant and version, from its labelled predictions."""

    variant: str
    """Variant name."""
    version: str
    """Version that made the predictions."""
    labelled: int = 0
    """Predictions with a label so far."""
    outcome_rate: float | None = None
    """Share of labels that are the positive label."""
    accuracy: float | None = None
    """Share of labelled predictions that were right."""
    precision: float | None = None
    """Of the predicted positives with a label, the share that were positive."""
    recall: float | None = None
    """Of the labelled positives, the share that were predicted positive."""
    label_coverage: float | None = None
    """Labels over predictions in the same intervals (labels that arrive later than the
    prediction's interval are matched with that interval's traffic in the steady state)."""
    mean_label_delay_seconds: float | None = None
    """Mean time from prediction to label."""


class QualityStatus(StatusModel):
    """Realized quality, accumulated one interval at a time from batched queries."""

    since: datetime
    """When tracking started (the first interval counted)."""
    last_tick: datetime
    """The end of the last interval counted; the next reading covers the next interval."""
    counts: list[OutcomeCounts] = Field(default_factory=list)
    """Raw counts per variant and version, from which everything else is computed."""
    variants: list[VariantQuality] = Field(default_factory=list)
    """Quality per variant and version."""
    missed_intervals: int = 0
    """Intervals whose query failed: not counted, never evidence."""
    message: str = ""
    """Why the last reading counted nothing, if it did not."""


class ExperimentStatus(StatusModel):
    """The A/B experiment: the last look and, once it ended, its verdict."""

    verdict: str
    """Running, ChallengerBetter, NoDifference, ChampionBetter or Inconclusive."""
    metric: str
    """outcomeRate or accuracy."""
    champion: str
    """Champion variant name."""
    challenger: str
    """Challenger variant name."""
    champion_version: str = ""
    """The champion's version under test; another version starts a new experiment."""
    challenger_version: str = ""
    """The challenger's version under test; another version starts a new experiment."""
    started_at: datetime
    """When the experiment started (the first look)."""
    concluded_at: datetime | None = None
    """When it reached its verdict; the experiment no longer changes after that."""
    effect: float | None = None
    """Challenger minus champion, in the metric's units (0.02 = 2 points)."""
    lower: float | None = None
    """Lower end of the always-valid confidence interval of the effect."""
    upper: float | None = None
    """Upper end of that interval."""
    confidence: float
    """1 - alpha."""
    counting_since: datetime | None = None
    """The look from which the test counts labels: the first one at least labelHorizon after
    startedAt. Empty while the versions' first labels are still coming in."""
    baseline: list[OutcomeCounts] = Field(default_factory=list)
    """Both arms' counts in status.quality at countingSince. The test judges the increase
    since then, so both arms cover the same time, whenever each version began serving."""
    champion_samples: int = 0
    """The champion's labelled predictions since countingSince."""
    challenger_samples: int = 0
    """The challenger's labelled predictions since countingSince."""
    looks: int = 0
    """Looks so far (one per quality interval)."""
    message: str = ""
    """The last look, in words."""
    promotion_trigger_id: str = ""
    """The trigger id of the canary this verdict started (onChallengerBetter Promote); set
    with the canary in one status write, so one verdict starts at most one canary."""
    promotion_message: str = ""
    """Why onChallengerBetter Promote did not hand this verdict's challenger over, if so."""


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
    estimated_quality: QualityEstimation | None = None
    """Each variant's expected accuracy, precision and recall before labels arrive."""
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
    quality: QualityStatus | None = None
    """Realized quality per variant and version, when spec.quality is set."""
    experiment: ExperimentStatus | None = None
    """The A/B experiment, when spec.experiment is set."""
