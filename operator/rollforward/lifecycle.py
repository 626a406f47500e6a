"""The roll-forward state machine: trigger, retrain, gate, canary, promote or roll back. Pure.

    Stable --trigger--> Retraining --accepted--> Canary(step i) --all steps pass--> Promoting
      ^                    | rejected / failed        | failed / rollback request        |
      +--------------------+-------- RolledBack <-----+                                   |
      +------------------------------------------- Stable (new champion) <---------------+

All progress is in status; every function here takes status in and gives status out, so a
restarted operator continues from whatever status it finds. Inconclusive analysis holds (or
rolls back if the spec says so); it never counts as failed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rollforward.analysis import AnalysisInputs, analyse, verdict
from rollforward.api import (
    AnalysisResult,
    Approval,
    ConditionType,
    HistoryEntry,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    OnInconclusive,
    Reason,
    RetrainingStatus,
    RolloutStatus,
    VariantRole,
    duration_seconds,
)
from rollforward.api import annotations as requests
from rollforward.builders import Manifest
from rollforward.conditions import ConditionStatus, set_condition
from rollforward.events import Event
from rollforward.naming import ANNOTATION_VERSION, job_name
from rollforward.observed import DeploymentHealth, deployment_health
from rollforward.retraining import (
    backoff,
    drift_summary,
    gate,
    limit_reason,
    pending_trigger,
    read_job,
    recent_starts,
    result_metrics,
    retraining_job,
    with_history,
)
from rollforward.status_summary import lifecycle_phase
from rollforward.variants import champion_version, spec_source

HANDLED_REQUESTS_KEPT = 20
CANDIDATE_DEADLINE = timedelta(minutes=10)
"""How long a candidate may take to become available before it is rolled back."""


@dataclass(frozen=True)
class LifecycleInputs:
    """What gather observed for the state machine."""

    jobs: dict[str, Manifest] = field(default_factory=dict)
    """Retraining Jobs by name."""
    job_pods: dict[str, Manifest] = field(default_factory=dict)
    """The pod of each retraining Job, by Job name."""
    candidate: DeploymentHealth | None = None
    """Health of the candidate's Deployment."""
    champion_deployment: Manifest | None = None
    """The champion's Deployment, to see a promotion finish rolling."""
    analysis: AnalysisInputs | None = None
    """Measurements, when a canary step's analysis is due."""


@dataclass
class _Step:
    """The mutable scratchpad of one advance; turned into a LifecycleResult at the end."""

    status: ModelDeploymentStatus
    events: list[Event] = field(default_factory=list)
    jobs: list[Manifest] = field(default_factory=list)
    delete_jobs: list[str] = field(default_factory=list)

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event("Warning" if type_ == "Warning" else "Normal", reason, message))


@dataclass(frozen=True)
class LifecycleResult:
    status: ModelDeploymentStatus
    jobs: list[Manifest]
    delete_jobs: list[str]
    events: list[Event]


def rollout_hash(deployment: ModelDeployment) -> str:
    """Identifies the rollout spec; an analysis never carries over a change of it."""
    text = json.dumps(deployment.spec.rollout.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _request(deployment: ModelDeployment, annotation: str) -> str | None:
    """The handledRequests key of a one-shot request not acted on yet, or None."""
    value = deployment.metadata.annotations.get(annotation)
    if not value:
        return None
    key = requests.request_key(annotation, value)
    return None if key in deployment.status.handled_requests else key


def _handled(status: ModelDeploymentStatus, key: str) -> list[str]:
    return [*status.handled_requests, key][-HANDLED_REQUESTS_KEPT:]


def is_paused(deployment: ModelDeployment) -> bool:
    return deployment.metadata.annotations.get(requests.PAUSED, "").lower() == "true"


def analysis_due(deployment: ModelDeployment, now: datetime) -> bool:
    """Whether this reconcile must measure the current canary step (gather asks)."""
    rollout = deployment.status.rollout
    if rollout is None or rollout.promoting or rollout.awaiting_approval or is_paused(deployment):
        return False
    if not rollout.candidate_ready:
        return False
    if rollout.spec_hash != rollout_hash(deployment):
        return False
    step = deployment.spec.rollout.steps[min(rollout.step, len(deployment.spec.rollout.steps) - 1)]
    return now - rollout.step_started_at >= timedelta(seconds=duration_seconds(step.pause))


def step_window_seconds(deployment: ModelDeployment) -> int:
    rollout = deployment.status.rollout
    index = rollout.step if rollout is not None else 0
    step = deployment.spec.rollout.steps[min(index, len(deployment.spec.rollout.steps) - 1)]
    return max(int(duration_seconds(step.pause)), 1)


def advance(deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime) -> LifecycleResult:
    """One step of the state machine on `deployment.status`."""
    work = _Step(status=deployment.status)
    if not work.status.history:
        work.update(
            history=[
                HistoryEntry(
                    version=champion_version(deployment.spec, work.status),
                    trigger="initial",
                    outcome="Serving",
                    started_at=now,
                )
            ]
        )
    _follow_retraining(deployment, inputs, now, work)
    if work.status.rollout is not None:
        _follow_rollout(deployment, inputs, now, work)
    _maybe_start_retraining(deployment, inputs, now, work)
    work.update(phase=lifecycle_phase(work.status))
    _retraining_condition(deployment, now, work)
    return LifecycleResult(work.status, work.jobs, work.delete_jobs, work.events)


# --- retraining --------------------------------------------------------------------------------


def _maybe_start_retraining(
    deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime, work: _Step
) -> None:
    spec = deployment.spec.retraining
    current = work.status.retraining
    busy = current is not None and (
        current.phase is JobPhase.RUNNING
        or (current.phase is JobPhase.FAILED and current.next_attempt_at is not None)
    )
    if spec is None or busy or work.status.rollout is not None or is_paused(deployment):
        return
    view = deployment.model_copy(update={"status": work.status})
    trigger = pending_trigger(view, now)
    if trigger is None:
        return
    limited = limit_reason(spec, work.status, now)
    if limited is not None:
        if work.status.retraining is None or work.status.retraining.trigger_id != trigger.id:
            work.event("Normal", Reason.RETRAIN_LIMITED.value, f"{trigger.kind.value}: {limited}")
        work.update(
            retraining=RetrainingStatus(
                trigger_id=trigger.id,
                trigger=trigger.kind.value,
                job_name="",
                attempt=0,
                phase=JobPhase.FAILED,
                started_at=now,
                message=f"waiting: {limited}",
            )
            if work.status.retraining is None or work.status.retraining.trigger_id != trigger.id
            else work.status.retraining
        )
        return
    _start_attempt(deployment, trigger.id, trigger.kind.value, 1, now, work)
    if trigger.request is not None:
        work.update(handled_requests=_handled(work.status, trigger.request))
    started = work.status.retraining.job_name if work.status.retraining else ""
    work.event(
        "Normal", "RetrainingStarted", f"{trigger.kind.value} trigger {trigger.id}: Job {started}"
    )


def _start_attempt(
    deployment: ModelDeployment, trigger: str, kind: str, attempt: int, now: datetime, work: _Step
) -> None:
    name = job_name(deployment.metadata.name, trigger, attempt)
    work.update(
        retraining=RetrainingStatus(
            trigger_id=trigger,
            trigger=kind,
            job_name=name,
            attempt=attempt,
            phase=JobPhase.RUNNING,
            started_at=now,
        ),
        retrain_starts=[*recent_starts(work.status, now), now],
        last_rollback="",
    )
    view = deployment.model_copy(update={"status": work.status})
    work.jobs.append(retraining_job(view, trigger, attempt, drift_summary(work.status)))


def _follow_retraining(
    deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime, work: _Step
) -> None:
    current = work.status.retraining
    spec = deployment.spec.retraining
    if current is None or spec is None:
        return
    if current.phase is JobPhase.FAILED and current.next_attempt_at is not None:
        if now >= current.next_attempt_at and not is_paused(deployment):
            if (
                limit_reason(spec, work.status, now)
                and len(recent_starts(work.status, now)) >= spec.max_per_day
            ):
                _final_failure(current, f"{current.message}; no attempt left today", now, work)
                return
            _start_attempt(
                deployment, current.trigger_id, current.trigger, current.attempt + 1, now, work
            )
            work.event(
                "Normal",
                "RetrainingRetried",
                f"attempt {current.attempt + 1} of {spec.max_attempts}",
            )
        return
    if current.phase is not JobPhase.RUNNING:
        return
    job = inputs.jobs.get(current.job_name)
    outcome = read_job(job, inputs.job_pods.get(current.job_name))
    timeout = timedelta(seconds=duration_seconds(spec.timeout))
    if not outcome.finished:
        if job is None:
            # Created but not seen yet, or lost: apply again (same name, so never a second Job).
            view = deployment.model_copy(update={"status": work.status})
            work.jobs.append(
                retraining_job(
                    view, current.trigger_id, current.attempt, drift_summary(work.status)
                )
            )
        if now - current.started_at > timeout + timedelta(seconds=30):
            work.delete_jobs.append(current.job_name)
            _attempt_failed(deployment, current, f"Job timed out after {spec.timeout}", now, work)
        return
    if not outcome.succeeded or outcome.result is None:
        _attempt_failed(deployment, current, outcome.problem, now, work)
        return
    result = outcome.result
    view = deployment.model_copy(update={"status": work.status})
    reasons = gate(view, result)
    metrics = result_metrics(result)
    if reasons:
        message = "; ".join(reasons)[:900]
        work.update(
            retraining=_ended(current, JobPhase.REJECTED, now, message, result.version),
            failed_versions=_add_failed(work.status, result.version),
            history=with_history(
                work.status,
                _entry(current, result.version, "Rejected", message, metrics, finished_at=now),
            ),
        )
        work.event("Warning", Reason.CANDIDATE_REJECTED.value, f"{result.version}: {message}")
        return
    work.update(
        retraining=_ended(
            current, JobPhase.SUCCEEDED, now, "candidate passed the acceptance gate", result.version
        ),
        rollout=RolloutStatus(
            candidate_version=result.version,
            trigger_id=current.trigger_id,
            step=0,
            step_started_at=now,
            spec_hash=rollout_hash(deployment),
        ),
        history=with_history(
            work.status,
            _entry(current, result.version, "Canary", "accepted; canary started", metrics),
        ),
    )
    reported = ", ".join(f"{k}={v}" for k, v in metrics.items())
    work.event(
        "Normal",
        Reason.CANDIDATE_ACCEPTED.value,
        f"{result.version} accepted ({reported}); canary starts",
    )


def _add_failed(status: ModelDeploymentStatus, version: str) -> list[str]:
    if not version or version in status.failed_versions:
        return status.failed_versions
    return [*status.failed_versions, version][-50:]


def _attempt_failed(
    deployment: ModelDeployment, current: RetrainingStatus, problem: str, now: datetime, work: _Step
) -> None:
    spec = deployment.spec.retraining
    assert spec is not None
    if current.attempt < spec.max_attempts:
        retry_at = now + backoff(current.attempt)
        work.update(
            retraining=current.model_copy(
                update={
                    "phase": JobPhase.FAILED,
                    "finished_at": now,
                    "next_attempt_at": retry_at,
                    "message": f"{problem}; retry {current.attempt + 1} at {retry_at.isoformat()}",
                }
            )
        )
        work.event("Warning", Reason.JOB_FAILED.value, f"attempt {current.attempt}: {problem}")
        return
    _final_failure(current, problem, now, work)


def _final_failure(current: RetrainingStatus, problem: str, now: datetime, work: _Step) -> None:
    work.update(
        retraining=_ended(current, JobPhase.FAILED, now, problem).model_copy(
            update={"next_attempt_at": None}
        ),
        history=with_history(
            work.status,
            _entry(current, f"job {current.job_name}", "Failed", problem[:900], finished_at=now),
        ),
    )
    work.event(
        "Warning",
        Reason.JOB_FAILED.value,
        f"retraining gave up after attempt {current.attempt}: {problem}",
    )


def _ended(
    current: RetrainingStatus,
    phase: JobPhase,
    now: datetime,
    message: str,
    candidate: str | None = None,
) -> RetrainingStatus:
    update: dict[str, object] = {"phase": phase, "finished_at": now, "message": message}
    if candidate is not None:
        update["candidate_version"] = candidate
    return current.model_copy(update=update)


def _entry(
    current: RetrainingStatus,
    version: str,
    outcome: str,
    message: str,
    metrics: dict[str, float] | None = None,
    finished_at: datetime | None = None,
) -> HistoryEntry:
    """The history entry of this trigger's candidate (or failed Job)."""
    return HistoryEntry.model_validate(
        {
            "version": version or f"job {current.job_name}",
            "trigger": current.trigger,
            "trigger_id": current.trigger_id,
            "outcome": outcome,
            "metrics": metrics or {},
            "message": message,
            "started_at": current.started_at,
            "finished_at": finished_at,
        }
    )


# --- canary ------------------------------------------------------------------------------------


def _follow_rollout(
    deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime, work: _Step
) -> None:
    rollout = work.status.rollout
    assert rollout is not None
    rollback = _request(deployment, requests.ROLLBACK)
    if rollback is not None:
        work.update(handled_requests=_handled(work.status, rollback))
        _roll_back(rollout, "rollback requested (rollforward.io/rollback)", now, work)
        return
    if rollout.promoting:
        _finish_promotion(deployment, rollout, inputs, now, work)
        return
    if rollout.spec_hash != rollout_hash(deployment):
        work.update(
            rollout=rollout.model_copy(
                update={
                    "step": 0,
                    "step_started_at": now,
                    "spec_hash": rollout_hash(deployment),
                    "inconclusive_count": 0,
                    "analysis": [],
                    "awaiting_approval": False,
                    "held_reason": "",
                }
            )
        )
        work.event(
            "Normal", "AnalysisRestarted", "spec.rollout changed: the canary starts again at step 1"
        )
        return
    if is_paused(deployment):
        if rollout.held_reason != "paused by rollforward.io/paused":
            work.update(
                rollout=rollout.model_copy(
                    update={"held_reason": "paused by rollforward.io/paused"}
                )
            )
        return
    if rollout.held_reason == "paused by rollforward.io/paused":
        # Resumed: the step's pause counts again from now, so analysis measures fresh data.
        rollout = rollout.model_copy(update={"held_reason": "", "step_started_at": now})
        work.update(rollout=rollout)
        work.event("Normal", "Resumed", "rollforward.io/paused removed: the canary continues")
    if not rollout.candidate_ready:
        _await_candidate(rollout, inputs, now, work)
        return
    if rollout.awaiting_approval:
        approve = _request(deployment, requests.APPROVE)
        if approve is not None or deployment.spec.rollout.approval is Approval.AUTOMATIC:
            if approve is not None:
                work.update(handled_requests=_handled(work.status, approve))
            _start_promotion(rollout, "approved", work)
        return
    if inputs.analysis is None:
        return
    _judge_step(deployment, rollout, inputs, now, work)


def _await_candidate(
    rollout: RolloutStatus, inputs: LifecycleInputs, now: datetime, work: _Step
) -> None:
    """Route to the candidate and start the first step's clock only once it serves; a
    candidate that never becomes available within the deadline is rolled back."""
    if inputs.candidate is not None and inputs.candidate.available:
        ready = rollout.model_copy(update={"candidate_ready": True, "step_started_at": now})
        work.update(rollout=ready)
        work.event("Normal", "CandidateReady", f"{rollout.candidate_version} serves; canary starts")
        return
    if now - rollout.step_started_at > CANDIDATE_DEADLINE:
        detail = inputs.candidate.message if inputs.candidate is not None else "no Deployment"
        _roll_back(
            rollout,
            f"the candidate did not become available within {CANDIDATE_DEADLINE}: {detail}",
            now,
            work,
        )


def _judge_step(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: _Step,
) -> None:
    assert inputs.analysis is not None
    champion = next(v.name for v in deployment.spec.variants if v.role is VariantRole.CHAMPION)
    if inputs.candidate is None or not inputs.candidate.available:
        detail = inputs.candidate.message if inputs.candidate else "no Deployment"
        results = [AnalysisResult(name="candidateAvailable", outcome="Failed", message=detail)]
    else:
        results = analyse(deployment, inputs.analysis, champion, rollout.candidate_version)
    outcome = verdict(results)
    steps = deployment.spec.rollout.steps
    if outcome == "Failed":
        failed = "; ".join(f"{r.name}: {r.message}" for r in results if r.outcome == "Failed")
        work.update(rollout=rollout.model_copy(update={"analysis": results}))
        _roll_back(
            work.status.rollout or rollout, f"step {rollout.step + 1} failed: {failed}", now, work
        )
        return
    if outcome == "Inconclusive":
        unclear = "; ".join(
            f"{r.name}: {r.message}" for r in results if r.outcome == "Inconclusive"
        )
        if deployment.spec.rollout.on_inconclusive is OnInconclusive.ROLLBACK:
            work.update(rollout=rollout.model_copy(update={"analysis": results}))
            _roll_back(
                rollout, f"inconclusive analysis (onInconclusive rollback): {unclear}", now, work
            )
            return
        count = rollout.inconclusive_count + 1
        held = ""
        if count >= deployment.spec.rollout.inconclusive_limit:
            held = f"{count} inconclusive analyses in a row; a person must resume or roll back"
            work.event("Warning", Reason.PAUSED.value, held)
        work.update(
            rollout=rollout.model_copy(
                update={
                    "analysis": results,
                    "inconclusive_count": count,
                    "step_started_at": now,
                    "held_reason": held,
                }
            )
        )
        return
    if rollout.step + 1 < len(steps):
        work.update(
            rollout=rollout.model_copy(
                update={
                    "step": rollout.step + 1,
                    "step_started_at": now,
                    "analysis": results,
                    "inconclusive_count": 0,
                }
            )
        )
        work.event(
            "Normal",
            "CanaryStep",
            f"step {rollout.step + 1} passed; candidate {rollout.candidate_version} now at "
            f"{steps[rollout.step + 1].weight}%",
        )
        return
    passed = rollout.model_copy(update={"analysis": results, "inconclusive_count": 0})
    if (
        deployment.spec.rollout.approval is Approval.MANUAL
        and _request(deployment, requests.APPROVE) is None
    ):
        work.update(rollout=passed.model_copy(update={"awaiting_approval": True}))
        work.event(
            "Normal",
            Reason.AWAITING_APPROVAL.value,
            f"every step passed; approve {rollout.candidate_version} with rollforward.io/approve",
        )
        return
    approve = _request(deployment, requests.APPROVE)
    if approve is not None:
        work.update(handled_requests=_handled(work.status, approve))
    _start_promotion(passed, "every step passed", work)


def _start_promotion(rollout: RolloutStatus, why: str, work: _Step) -> None:
    work.update(rollout=rollout.model_copy(update={"promoting": True, "awaiting_approval": False}))
    work.event("Normal", "Promoting", f"{why}: the champion rolls to {rollout.candidate_version}")


def _finish_promotion(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: _Step,
) -> None:
    champion = inputs.champion_deployment
    annotations = (champion or {}).get("metadata", {}).get("annotations") or {}
    health = deployment_health(champion)
    if annotations.get(ANNOTATION_VERSION) != rollout.candidate_version or not (
        health.available and health.up_to_date
    ):
        return
    previous = champion_version(deployment.spec, work.status)
    history = [
        entry.model_copy(update={"outcome": "Superseded", "finished_at": now})
        if entry.version == previous and entry.outcome in ("Serving", "Promoted")
        else entry
        for entry in work.status.history
    ]
    history = [
        entry.model_copy(update={"outcome": "Promoted", "finished_at": now, "message": "promoted"})
        if entry.version == rollout.candidate_version and entry.trigger_id == rollout.trigger_id
        else entry
        for entry in history
    ]
    work.update(
        champion=rollout.candidate_version,
        champion_source=spec_source(deployment.spec.champion()),
        promoted_at=now,
        reference_counts=None,
        last_rollback="",
        rollout=None,
        history=history,
        # A new champion has a new baseline: drift starts from scratch.
        drift_tracking=work.status.drift_tracking.model_copy(
            update={"drifted": False, "breach_streak": 0, "clean_streak": 0, "drifted_since": None}
        ),
    )
    work.update(
        conditions=set_condition(
            work.status.conditions,
            ConditionType.DRIFTED,
            "False",
            Reason.NO_DRIFT,
            f"new champion {rollout.candidate_version}; drift is measured against its baseline",
            deployment.metadata.generation or 0,
            now,
        )
    )
    work.event(
        "Normal",
        Reason.PROMOTED.value,
        f"{rollout.candidate_version} is the champion (was {previous})",
    )


def _roll_back(rollout: RolloutStatus, why: str, now: datetime, work: _Step) -> None:
    rolled_back = HistoryEntry(
        version=rollout.candidate_version,
        trigger="",
        trigger_id=rollout.trigger_id,
        outcome="RolledBack",
        started_at=rollout.step_started_at,
    )
    existing = next(
        (
            e
            for e in work.status.history
            if (e.version, e.trigger_id) == (rollout.candidate_version, rollout.trigger_id)
        ),
        rolled_back,
    )
    entry = existing.model_copy(
        update={"outcome": "RolledBack", "finished_at": now, "message": why[:900]}
    )
    history = with_history(work.status, entry)
    work.update(
        rollout=None,
        failed_versions=_add_failed(work.status, rollout.candidate_version),
        history=history,
        last_rollback=why[:900],
    )
    work.event("Warning", Reason.ROLLED_BACK.value, f"{rollout.candidate_version}: {why}"[:1000])


# --- summary -----------------------------------------------------------------------------------


def _retraining_condition(deployment: ModelDeployment, now: datetime, work: _Step) -> None:
    retraining = work.status.retraining
    generation = deployment.metadata.generation or 0
    status: ConditionStatus
    if retraining is None:
        status, reason, message = "False", Reason.IDLE, "no retraining has run"
    elif retraining.phase is JobPhase.RUNNING:
        status, reason, message = (
            "True",
            Reason.JOB_RUNNING,
            f"Job {retraining.job_name} (attempt {retraining.attempt})",
        )
    elif retraining.phase is JobPhase.SUCCEEDED:
        status, reason, message = (
            "False",
            Reason.CANDIDATE_ACCEPTED,
            f"{retraining.candidate_version}: {retraining.message}",
        )
    elif retraining.phase is JobPhase.REJECTED:
        status, reason, message = "False", Reason.CANDIDATE_REJECTED, retraining.message
    elif retraining.attempt == 0:
        status, reason, message = "False", Reason.RETRAIN_LIMITED, retraining.message
    else:
        status, reason, message = "False", Reason.JOB_FAILED, retraining.message
    conditions = set_condition(
        work.status.conditions,
        ConditionType.RETRAINING,
        status,
        reason,
        message[:1000],
        generation,
        now,
    )
    rollout = work.status.rollout
    if rollout is not None:
        if rollout.promoting:
            reason, message = Reason.PROMOTED, f"champion rolling to {rollout.candidate_version}"
        elif rollout.held_reason:
            reason, message = Reason.PAUSED, rollout.held_reason
        elif rollout.awaiting_approval:
            reason, message = Reason.AWAITING_APPROVAL, "waiting for rollforward.io/approve"
        else:
            step = deployment.spec.rollout.steps[
                min(rollout.step, len(deployment.spec.rollout.steps) - 1)
            ]
            reason, message = (
                Reason.CANARY_IN_PROGRESS,
                (
                    f"{rollout.candidate_version} at {step.weight}% (step {rollout.step + 1} of "
                    f"{len(deployment.spec.rollout.steps)})"
                ),
            )
        conditions = set_condition(
            conditions, ConditionType.PROGRESSING, "True", reason, message, generation, now
        )
    work.update(conditions=conditions)
