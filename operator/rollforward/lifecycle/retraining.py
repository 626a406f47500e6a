"""The retraining half of the state machine: start a Job on a trigger, follow it, retry it
with backoff, and judge its candidate at the acceptance gate. Pure.

Triggers, limits, the Job manifest and the gate itself are in rollforward.retraining; this
module moves status.retraining (and, on acceptance, opens status.rollout).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rollforward.api import (
    EventReason,
    HistoryOutcome,
    JobPhase,
    ModelDeployment,
    RetrainingSpec,
    RetrainingStatus,
    RolloutStatus,
    duration_seconds,
)
from rollforward.lifecycle.canary import rollout_hash
from rollforward.lifecycle.progress import (
    LifecycleInputs,
    Progress,
    ended,
    history_entry,
    is_paused,
)
from rollforward.naming import job_name
from rollforward.retraining import (
    Trigger,
    backoff,
    drift_summary,
    gate,
    limit_reason,
    pending_trigger,
    read_job,
    recent_starts,
    result_metrics,
    retraining_job,
    training_data,
    with_history,
)
from rollforward.serving.contract import RetrainingResult
from rollforward.serving.objectstore.client import Answer

JOB_GRACE = timedelta(seconds=30)
"""Beyond spec.retraining.timeout, how long a Job may still run before it counts as failed
(the Job's own activeDeadlineSeconds should have ended it by then)."""


def busy(current: RetrainingStatus | None) -> bool:
    """A Job is running, or a failed attempt waits for its retry."""
    return current is not None and (
        current.phase is JobPhase.RUNNING
        or (current.phase is JobPhase.FAILED and current.next_attempt_at is not None)
    )


def maybe_start(deployment: ModelDeployment, now: datetime, work: Progress) -> None:
    """Start a Job if a trigger asks for one and no retraining or canary is under way."""
    spec = deployment.spec.retraining
    if spec is None or busy(work.status.retraining) or work.status.rollout is not None:
        return
    if is_paused(deployment):
        return
    trigger = pending_trigger(work.view(deployment), now)
    if trigger is None:
        return
    limited = limit_reason(spec, work.status, now)
    if limited is not None:
        _limited(trigger, limited, now, work)
        return
    start_attempt(deployment, trigger.id, trigger.kind.value, 1, now, work)
    if trigger.request is not None:
        work.handle(trigger.request)
    started = work.status.retraining.job_name if work.status.retraining else ""
    work.event(
        "Normal",
        EventReason.RETRAINING_STARTED,
        f"{trigger.kind.value} trigger {trigger.id}: Job {started}",
    )


def _limited(trigger: Trigger, limited: str, now: datetime, work: Progress) -> None:
    """A trigger the cooldown or daily maximum holds back: said once, remembered in status."""
    if work.status.retraining is not None and work.status.retraining.trigger_id == trigger.id:
        return
    work.event("Normal", EventReason.RETRAIN_LIMITED, f"{trigger.kind.value}: {limited}")
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
    )


def start_attempt(
    deployment: ModelDeployment,
    trigger: str,
    kind: str,
    attempt: int,
    now: datetime,
    work: Progress,
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
    work.jobs.append(
        retraining_job(work.view(deployment), trigger, attempt, drift_summary(work.status))
    )


def follow(
    deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime, work: Progress
) -> None:
    """Move the current retraining on: retry after backoff, or read the running Job."""
    current, spec = work.status.retraining, deployment.spec.retraining
    if current is None or spec is None:
        return
    if current.phase is JobPhase.FAILED and current.next_attempt_at is not None:
        _maybe_retry(deployment, spec, current, now, work)
    elif current.phase is JobPhase.RUNNING:
        _follow_job(deployment, spec, current, inputs, now, work)


def _maybe_retry(
    deployment: ModelDeployment,
    spec: RetrainingSpec,
    current: RetrainingStatus,
    now: datetime,
    work: Progress,
) -> None:
    assert current.next_attempt_at is not None
    if now < current.next_attempt_at or is_paused(deployment):
        return
    out_of_attempts = len(recent_starts(work.status, now)) >= spec.max_per_day
    if limit_reason(spec, work.status, now) and out_of_attempts:
        _final_failure(current, f"{current.message}; no attempt left today", now, work)
        return
    start_attempt(deployment, current.trigger_id, current.trigger, current.attempt + 1, now, work)
    work.event(
        "Normal",
        EventReason.RETRAINING_RETRIED,
        f"attempt {current.attempt + 1} of {spec.max_attempts}",
    )


def _follow_job(
    deployment: ModelDeployment,
    spec: RetrainingSpec,
    current: RetrainingStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: Progress,
) -> None:
    job = inputs.jobs.get(current.job_name)
    outcome = read_job(job, inputs.job_pods.get(current.job_name))
    if not outcome.finished:
        if job is None:
            # Created but not seen yet, or lost: apply again (same name, so never a second Job).
            view = work.view(deployment)
            summary = drift_summary(work.status)
            work.jobs.append(retraining_job(view, current.trigger_id, current.attempt, summary))
        timeout = timedelta(seconds=duration_seconds(spec.timeout))
        if now - current.started_at > timeout + JOB_GRACE:
            work.delete_jobs.append(current.job_name)
            _attempt_failed(spec, current, f"Job timed out after {spec.timeout}", now, work)
        return
    if not outcome.succeeded or outcome.result is None:
        _attempt_failed(spec, current, outcome.problem, now, work)
        return
    _judge_candidate(deployment, current, outcome.result, inputs.stored_bentos, now, work)


def _judge_candidate(
    deployment: ModelDeployment,
    current: RetrainingStatus,
    result: RetrainingResult,
    stored_bentos: dict[str, Answer] | None,
    now: datetime,
    work: Progress,
) -> None:
    """The acceptance gate: reject the candidate, or open its canary."""
    reasons = gate(work.view(deployment), result, stored_bentos)
    metrics = result_metrics(result)
    current = current.model_copy(update={"training_data": training_data(result)})
    if reasons:
        message = "; ".join(reasons)[:900]
        rejected = history_entry(
            current, result.version, HistoryOutcome.REJECTED, message, metrics, finished_at=now
        )
        work.update(
            retraining=ended(current, JobPhase.REJECTED, now, message, result.version),
            failed_versions=work.fail_version(result.version),
            history=with_history(work.status, rejected),
        )
        work.event("Warning", EventReason.CANDIDATE_REJECTED, f"{result.version}: {message}")
        return
    accepted = history_entry(
        current, result.version, HistoryOutcome.CANARY, "accepted; canary started", metrics
    )
    work.update(
        retraining=ended(
            current, JobPhase.SUCCEEDED, now, "candidate passed the acceptance gate", result.version
        ),
        rollout=RolloutStatus(
            candidate_version=result.version,
            trigger_id=current.trigger_id,
            step=0,
            step_started_at=now,
            spec_hash=rollout_hash(deployment),
        ),
        history=with_history(work.status, accepted),
    )
    reported = ", ".join(f"{k}={v}" for k, v in metrics.items())
    work.event(
        "Normal",
        EventReason.CANDIDATE_ACCEPTED,
        f"{result.version} accepted ({reported}); canary starts",
    )


def _attempt_failed(
    spec: RetrainingSpec, current: RetrainingStatus, problem: str, now: datetime, work: Progress
) -> None:
    if current.attempt >= spec.max_attempts:
        _final_failure(current, problem, now, work)
        return
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
    work.event("Warning", EventReason.JOB_FAILED, f"attempt {current.attempt}: {problem}")


def _final_failure(current: RetrainingStatus, problem: str, now: datetime, work: Progress) -> None:
    failed = history_entry(
        current, f"job {current.job_name}", HistoryOutcome.FAILED, problem[:900], finished_at=now
    )
    work.update(
        retraining=ended(current, JobPhase.FAILED, now, problem).model_copy(
            update={"next_attempt_at": None}
        ),
        history=with_history(work.status, failed),
    )
    work.event(
        "Warning",
        EventReason.JOB_FAILED,
        f"retraining gave up after attempt {current.attempt}: {problem}",
    )
