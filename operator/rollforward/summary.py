"""Every condition, the phase and observedGeneration, from what the decisions found. Pure.

This is the only module that writes conditions: the drift check, the state machine and the
serving plan say what they found (`Facts`), and `summarize` turns that into status once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rollforward.api import (
    Condition,
    ConditionType,
    DriftVerdict,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    Reason,
    RetrainingStatus,
    RolloutStatus,
)
from rollforward.conditions import ConditionStatus, find_condition, set_condition

if TYPE_CHECKING:
    # Only the type: the drift check writes its conditions through this module.
    from rollforward.drift.check import DriftCheck

Verdict = tuple[ConditionStatus, Reason, str]
"""(status, reason, message) of one condition."""


@dataclass(frozen=True)
class ServingFacts:
    """What the serving plan found about the children."""

    ready: bool
    reason: Reason
    message: str
    up_to_date: bool
    """Every variant's Deployment has rolled to its spec."""
    blocked: bool
    """The router cannot be built at all (e.g. Gateway API missing)."""
    writing: bool
    """This reconcile writes a variant's children, or has children to delete (now or once
    the router let go of them).

    A write of the router alone is not counted: Ready already says whether routing works,
    and `up_to_date` follows only the variants' rolls, so such a write made Progressing True
    for exactly one reconcile, two status patches that said nothing (with a gated router, at
    creation, once per resource with a challenger: rollforward.traffic_gate gives it its
    users)."""


@dataclass(frozen=True)
class Facts:
    """What this reconcile's decisions found."""

    drift: DriftCheck | None = None
    """The drift check, when one ran."""
    promoted: str | None = None
    """The version promoted by this reconcile."""
    serving: ServingFacts | None = None
    """The children's state, when the serving plan ran."""


def summarize(
    deployment: ModelDeployment, status: ModelDeploymentStatus, facts: Facts, now: datetime
) -> ModelDeploymentStatus:
    """`status` with its conditions, phase (and observedGeneration) computed from `facts`."""
    generation = deployment.metadata.generation or 0

    def put(conditions: list[Condition], type_: ConditionType, found: Verdict) -> list[Condition]:
        return set_condition(conditions, type_, *found, generation, now)

    conditions = drift_conditions(deployment, status.conditions, facts.drift, facts.promoted, now)
    conditions = put(conditions, ConditionType.RETRAINING, _retraining(status.retraining))
    progressing = _progressing(deployment, status.rollout, facts.serving)
    if progressing is not None:
        conditions = put(conditions, ConditionType.PROGRESSING, progressing)
    update: dict[str, object] = {"conditions": conditions}
    if facts.serving is not None:
        serving = facts.serving
        ready: ConditionStatus = "True" if serving.ready else "False"
        conditions = put(conditions, ConditionType.READY, (ready, serving.reason, serving.message))
        update.update(conditions=conditions, observed_generation=generation)
    update["phase"] = _phase(deployment.status.phase, status, facts.serving)
    return status.model_copy(update=update)


def drift_conditions(
    deployment: ModelDeployment,
    conditions: Sequence[Condition],
    check: DriftCheck | None,
    promoted: str | None,
    now: datetime,
) -> list[Condition]:
    """Drifted and MonitoringAvailable after a check; a promotion starts drift afresh."""
    generation = deployment.metadata.generation or 0
    result = list(conditions)
    if check is not None:
        drifted = _drifted(deployment, result, check)
        result = set_condition(result, ConditionType.DRIFTED, *drifted, generation, now)
        available = check.monitoring is Reason.METRICS_OK
        result = set_condition(
            result,
            ConditionType.MONITORING_AVAILABLE,
            "True" if available else "False",
            check.monitoring,
            check.report.reason,
            generation,
            now,
        )
    if promoted is not None:
        message = f"new champion {promoted}; drift is measured against its baseline"
        verdict: Verdict = ("False", Reason.NO_DRIFT, message)
        result = set_condition(result, ConditionType.DRIFTED, *verdict, generation, now)
    return result


def _drifted(
    deployment: ModelDeployment, conditions: Sequence[Condition], check: DriftCheck
) -> Verdict:
    report, tracking = check.report, check.tracking
    status: ConditionStatus = "True" if tracking.drifted else "False"
    if tracking.drifted:
        return status, Reason.DRIFT_DETECTED, f"{tracking.breach_streak} breaches: {report.reason}"
    if tracking.breach_streak:
        needed = deployment.spec.drift.consecutive_breaches
        message = f"{tracking.breach_streak} of {needed} breaches: {report.reason}"
        return status, Reason.BREACH_PENDING, message
    if report.outcome is DriftVerdict.INCONCLUSIVE:
        previous = find_condition(conditions, ConditionType.DRIFTED)
        if previous is not None:
            # Missing data is no evidence: the previous decision stands, in its own words.
            return status, Reason(previous.reason), previous.message
        return status, Reason.CHECK_INCONCLUSIVE, report.reason
    return status, Reason.NO_DRIFT, report.reason


def _retraining(retraining: RetrainingStatus | None) -> Verdict:
    if retraining is None:
        return "False", Reason.IDLE, "no retraining has run"
    message = retraining.message[:1000]
    if retraining.phase is JobPhase.RUNNING:
        return (
            "True",
            Reason.JOB_RUNNING,
            f"Job {retraining.job_name} (attempt {retraining.attempt})",
        )
    if retraining.phase is JobPhase.SUCCEEDED:
        return (
            "False",
            Reason.CANDIDATE_ACCEPTED,
            f"{retraining.candidate_version}: {message}"[:1000],
        )
    if retraining.phase is JobPhase.REJECTED:
        return "False", Reason.CANDIDATE_REJECTED, message
    if retraining.attempt == 0:
        return "False", Reason.RETRAIN_LIMITED, message
    return "False", Reason.JOB_FAILED, message


def _progressing(
    deployment: ModelDeployment, rollout: RolloutStatus | None, serving: ServingFacts | None
) -> Verdict | None:
    """A canary under way says where it is; otherwise the children say if they are rolling."""
    if rollout is not None:
        return "True", *_rollout_progress(deployment, rollout)
    if serving is None:
        return None
    if serving.writing or not serving.up_to_date:
        return "True", Reason.CHILDREN_UPDATING, "children are being created or rolled"
    return "False", Reason.RECONCILED, "children match the spec"


def _rollout_progress(deployment: ModelDeployment, rollout: RolloutStatus) -> tuple[Reason, str]:
    if rollout.promoting:
        return Reason.PROMOTED, f"champion rolling to {rollout.candidate_version}"
    if rollout.held_reason:
        return Reason.PAUSED, rollout.held_reason
    if rollout.awaiting_approval:
        return Reason.AWAITING_APPROVAL, "waiting for rollforward.io/approve"
    steps = deployment.spec.rollout.steps
    step = steps[min(rollout.step, len(steps) - 1)]
    message = (
        f"{rollout.candidate_version} at {step.weight}% (step {rollout.step + 1} of {len(steps)})"
    )
    return Reason.CANARY_IN_PROGRESS, message


def _phase(previous: Phase, status: ModelDeploymentStatus, serving: ServingFacts | None) -> Phase:
    """The lifecycle's phase while the children serve; Pending until they first do."""
    if serving is None or serving.ready:
        return lifecycle_phase(status)
    never_ready = previous is Phase.PENDING and not serving.blocked
    return Phase.PENDING if never_ready else Phase.DEGRADED


def lifecycle_phase(status: ModelDeploymentStatus) -> Phase:
    """The one-word phase of the roll-forward lifecycle, from the status it left."""
    rollout, retraining = status.rollout, status.retraining
    if rollout is not None:
        if rollout.promoting:
            return Phase.PROMOTING
        if rollout.held_reason:
            return Phase.PAUSED
        if rollout.awaiting_approval:
            return Phase.AWAITING_APPROVAL
        return Phase.CANARY
    if retraining is not None and (
        retraining.phase is JobPhase.RUNNING
        or (retraining.phase is JobPhase.FAILED and retraining.next_attempt_at is not None)
    ):
        return Phase.RETRAINING
    # A rollback is the latest news until a new retraining or promotion clears it, even
    # while the champion still drifts (the Drifted condition says so).
    if status.last_rollback:
        return Phase.ROLLED_BACK
    if status.drift_tracking.drifted:
        return Phase.DRIFTED
    return Phase.STABLE


def invalid_spec(
    status: ModelDeploymentStatus, message: str, generation: int, now: datetime
) -> ModelDeploymentStatus:
    """A spec the operator cannot parse: Ready is False and says which field."""
    conditions = set_condition(
        status.conditions,
        ConditionType.READY,
        "False",
        Reason.INVALID_SPEC,
        message,
        generation,
        now,
    )
    return status.model_copy(update={"conditions": conditions})
