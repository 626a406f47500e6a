"""The canary half of the state machine: wait for the candidate, judge each step, then
promote or roll back. Pure.

A step moves on `apply_verdict(results)`: the analysis at the end of its pause
(`judge_step`) hands its AnalysisResults to it. Before that, a running step is looked at
every analysis interval (`watch_step`: error rate by a sequential test, latency,
maxFailedRequests): a Failed look goes to `apply_verdict` and rolls back at once; anything
else waits, so a step never passes before its whole pause and missing data never fails it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from rollforward.analysis import (
    AnalysisInputs,
    analyse,
    candidate_counts,
    interim_analysis,
    verdict,
)
from rollforward.api import (
    AnalysisResult,
    Approval,
    BlastRadius,
    CanaryStep,
    EventReason,
    HeldReason,
    HistoryEntry,
    HistoryOutcome,
    ModelDeployment,
    OnInconclusive,
    RolloutStatus,
    duration_seconds,
)
from rollforward.api import annotations as steering
from rollforward.lifecycle.progress import LifecycleInputs, Progress, is_paused, pending_request
from rollforward.looks import counted
from rollforward.naming import ANNOTATION_VERSION
from rollforward.observed import deployment_health
from rollforward.retraining import with_history
from rollforward.variants import champion_version, spec_source

CANDIDATE_DEADLINE = timedelta(minutes=10)
"""How long a candidate may take to become available before it is rolled back."""


def rollout_hash(deployment: ModelDeployment) -> str:
    """Identifies the rollout spec; an analysis never carries over a change of it."""
    text = json.dumps(deployment.spec.rollout.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def current_step(deployment: ModelDeployment) -> CanaryStep:
    """The spec of the step the canary is at (the last one past the end)."""
    rollout, steps = deployment.status.rollout, deployment.spec.rollout.steps
    index = rollout.step if rollout is not None else 0
    return steps[min(index, len(steps) - 1)]


def analysis_due(deployment: ModelDeployment, now: datetime) -> bool:
    """Whether this reconcile must measure the current canary step: every reconcile of a
    running step, which is requeued every analysis interval (rollforward.looks)."""
    rollout = deployment.status.rollout
    if rollout is None or rollout.promoting or rollout.awaiting_approval or is_paused(deployment):
        return False
    return rollout.candidate_ready and rollout.spec_hash == rollout_hash(deployment)


def step_complete(deployment: ModelDeployment, now: datetime) -> bool:
    """Whether the current step's pause has elapsed: only then can the step pass."""
    rollout = deployment.status.rollout
    if rollout is None:
        return False
    pause = timedelta(seconds=duration_seconds(current_step(deployment).pause))
    return now - rollout.step_started_at >= pause


def follow(
    deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime, work: Progress
) -> None:
    """Move the canary under way one step on, in order of precedence."""
    rollout = work.status.rollout
    assert rollout is not None
    rollback = pending_request(deployment, steering.ROLLBACK)
    if rollback is not None:
        work.handle(rollback)
        _roll_back(rollout, "rollback requested (rollforward.io/rollback)", now, work)
    elif rollout.promoting:
        _finish_promotion(deployment, rollout, inputs, now, work)
    elif rollout.spec_hash != rollout_hash(deployment):
        _restart_analysis(deployment, rollout, now, work)
    elif is_paused(deployment):
        if rollout.held_reason != HeldReason.PAUSED:
            work.update(rollout=rollout.model_copy(update={"held_reason": HeldReason.PAUSED}))
    else:
        _follow_unpaused(deployment, _resumed(rollout, now, work), inputs, now, work)


def _follow_unpaused(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: Progress,
) -> None:
    if not rollout.candidate_ready:
        _await_candidate(rollout, inputs, now, work)
    elif rollout.awaiting_approval:
        approve = pending_request(deployment, steering.APPROVE)
        if approve is not None or deployment.spec.rollout.approval is Approval.AUTOMATIC:
            if approve is not None:
                work.handle(approve)
            _start_promotion(rollout, "approved", work)
    elif inputs.analysis is not None:
        rollout = _count_blast_radius(deployment, rollout, inputs.analysis, now)
        work.update(rollout=rollout)
        if step_complete(deployment.model_copy(update={"status": work.status}), now):
            judge_step(deployment, rollout, inputs, now, work)
        else:
            watch_step(deployment, rollout, inputs.analysis, now, work)


def _count_blast_radius(
    deployment: ModelDeployment, rollout: RolloutStatus, analysis: AnalysisInputs, now: datetime
) -> RolloutStatus:
    served = candidate_counts(deployment, analysis)
    if served is None:
        return rollout
    radius = counted(rollout.blast_radius, served.requests, served.errors, now)
    return rollout.model_copy(update={"blast_radius": radius})


def _restart_analysis(
    deployment: ModelDeployment, rollout: RolloutStatus, now: datetime, work: Progress
) -> None:
    restarted = {
        "step": 0,
        "step_started_at": now,
        "spec_hash": rollout_hash(deployment),
        "inconclusive_count": 0,
        "analysis": [],
        "awaiting_approval": False,
        "held_reason": "",
    }
    work.update(rollout=rollout.model_copy(update=restarted))
    work.event(
        "Normal",
        EventReason.ANALYSIS_RESTARTED,
        "spec.rollout changed: the canary starts again at step 1",
    )


def _resumed(rollout: RolloutStatus, now: datetime, work: Progress) -> RolloutStatus:
    """After a pause, the step's pause counts again from now, so analysis measures fresh data."""
    if rollout.held_reason != HeldReason.PAUSED:
        return rollout
    resumed = rollout.model_copy(update={"held_reason": "", "step_started_at": now})
    work.update(rollout=resumed)
    work.event("Normal", EventReason.RESUMED, "rollforward.io/paused removed: the canary continues")
    return resumed


def _await_candidate(
    rollout: RolloutStatus, inputs: LifecycleInputs, now: datetime, work: Progress
) -> None:
    """Route to the candidate and start the first step's clock only once it serves (every
    replica updated and available: rollforward.traffic_gate routes nothing to it before); a
    candidate that never gets there within the deadline is rolled back."""
    if inputs.candidate is not None and inputs.candidate.serving:
        ready = rollout.model_copy(
            update={"candidate_ready": True, "step_started_at": now, "serving_since": now}
        )
        work.update(rollout=ready)
        work.event(
            "Normal",
            EventReason.CANDIDATE_READY,
            f"{rollout.candidate_version} serves; canary starts",
        )
        return
    if now - rollout.step_started_at > CANDIDATE_DEADLINE:
        detail = inputs.candidate.message if inputs.candidate is not None else "no Deployment"
        why = f"the candidate did not become available within {CANDIDATE_DEADLINE}: {detail}"
        _roll_back(rollout, why, now, work)


def judge_step(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: Progress,
) -> None:
    """The analysis at the end of a step's pause."""
    assert inputs.analysis is not None
    if inputs.candidate is None or not inputs.candidate.available:
        detail = inputs.candidate.message if inputs.candidate else "no Deployment"
        results = [AnalysisResult(name="candidateAvailable", outcome="Failed", message=detail)]
    else:
        champion = deployment.spec.champion().name
        results = analyse(deployment, inputs.analysis, champion, rollout.candidate_version)
    apply_verdict(deployment, rollout, results, now, work)


def watch_step(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    analysis: AnalysisInputs,
    now: datetime,
    work: Progress,
) -> None:
    """A look during the step: only a Failed verdict acts (it rolls back at once)."""
    results = interim_analysis(deployment, analysis, deployment.spec.champion().name)
    if verdict(results) == "Failed":
        apply_verdict(deployment, rollout, results, now, work)
    else:
        work.update(rollout=rollout.model_copy(update={"analysis": results}))


def apply_verdict(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    results: list[AnalysisResult],
    now: datetime,
    work: Progress,
) -> None:
    """Move the canary on a step's results: roll back, hold, or pass the step."""
    outcome = verdict(results)
    if outcome == "Failed":
        failed = "; ".join(f"{r.name}: {r.message}" for r in results if r.outcome == "Failed")
        work.update(rollout=rollout.model_copy(update={"analysis": results}))
        _roll_back(
            work.status.rollout or rollout, f"step {rollout.step + 1} failed: {failed}", now, work
        )
    elif outcome == "Inconclusive":
        _inconclusive(deployment, rollout, results, now, work)
    else:
        _step_passed(deployment, rollout, results, now, work)


def _inconclusive(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    results: list[AnalysisResult],
    now: datetime,
    work: Progress,
) -> None:
    """Missing data is never evidence: hold (measure again), or roll back if the spec says."""
    unclear = "; ".join(f"{r.name}: {r.message}" for r in results if r.outcome == "Inconclusive")
    spec = deployment.spec.rollout
    if spec.on_inconclusive is OnInconclusive.ROLLBACK:
        work.update(rollout=rollout.model_copy(update={"analysis": results}))
        why = f"inconclusive analysis (onInconclusive rollback): {unclear}"
        _roll_back(rollout, why, now, work)
        return
    count = rollout.inconclusive_count + 1
    held = ""
    if count >= spec.inconclusive_limit:
        held = HeldReason.INCONCLUSIVE.format(count=count)
        work.event("Warning", EventReason.PAUSED, held)
    update = {"analysis": results, "inconclusive_count": count, "step_started_at": now}
    work.update(rollout=rollout.model_copy(update={**update, "held_reason": held}))


def _step_passed(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    results: list[AnalysisResult],
    now: datetime,
    work: Progress,
) -> None:
    steps = deployment.spec.rollout.steps
    if rollout.step + 1 < len(steps):
        update = {"step": rollout.step + 1, "step_started_at": now, "inconclusive_count": 0}
        work.update(rollout=rollout.model_copy(update={**update, "analysis": results}))
        work.event(
            "Normal",
            EventReason.CANARY_STEP,
            f"step {rollout.step + 1} passed; candidate {rollout.candidate_version} now at "
            f"{steps[rollout.step + 1].weight}%",
        )
        return
    passed = rollout.model_copy(update={"analysis": results, "inconclusive_count": 0})
    approve = pending_request(deployment, steering.APPROVE)
    if deployment.spec.rollout.approval is Approval.MANUAL and approve is None:
        work.update(rollout=passed.model_copy(update={"awaiting_approval": True}))
        work.event(
            "Normal",
            EventReason.AWAITING_APPROVAL,
            f"every step passed; approve {rollout.candidate_version} with rollforward.io/approve",
        )
        return
    if approve is not None:
        work.handle(approve)
    _start_promotion(passed, "every step passed", work)


def _start_promotion(rollout: RolloutStatus, why: str, work: Progress) -> None:
    work.update(rollout=rollout.model_copy(update={"promoting": True, "awaiting_approval": False}))
    work.event(
        "Normal",
        EventReason.PROMOTING,
        f"{why}: the champion rolls to {rollout.candidate_version}",
    )


def _finish_promotion(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    inputs: LifecycleInputs,
    now: datetime,
    work: Progress,
) -> None:
    """Once the champion's Deployment runs the candidate, the candidate is the champion."""
    champion = inputs.champion_deployment
    annotations = (champion or {}).get("metadata", {}).get("annotations") or {}
    health = deployment_health(champion)
    rolled = annotations.get(ANNOTATION_VERSION) == rollout.candidate_version
    if not (rolled and health.available and health.up_to_date):
        return
    previous = champion_version(deployment.spec, work.status)
    work.update(
        champion=rollout.candidate_version,
        champion_source=spec_source(deployment.spec.champion()),
        promoted_at=now,
        reference_counts=None,
        last_rollback="",
        rollout=None,
        history=_promoted_history(work.status.history, previous, rollout, now),
        # A new champion has a new baseline: drift starts from scratch.
        drift_tracking=work.status.drift_tracking.model_copy(
            update={
                "drifted": False,
                "breach_streak": 0,
                "clean_streak": 0,
                "drifted_since": None,
                "drift_began_at": None,
            }
        ),
    )
    work.promoted = rollout.candidate_version
    work.event(
        "Normal",
        EventReason.PROMOTED,
        f"{rollout.candidate_version} is the champion (was {previous})",
    )


def _promoted_history(
    history: list[HistoryEntry], previous: str, rollout: RolloutStatus, now: datetime
) -> list[HistoryEntry]:
    """The old champion superseded, the candidate promoted."""
    serving = (HistoryOutcome.SERVING, HistoryOutcome.PROMOTED)
    superseded = {"outcome": HistoryOutcome.SUPERSEDED, "finished_at": now}
    promoted = {
        "outcome": HistoryOutcome.PROMOTED,
        "finished_at": now,
        "message": "promoted",
        "blast_radius": _final_radius(rollout, now),
    }
    result = []
    for entry in history:
        if entry.version == previous and entry.outcome in serving:
            entry = entry.model_copy(update=superseded)
        if (entry.version, entry.trigger_id) == (rollout.candidate_version, rollout.trigger_id):
            entry = entry.model_copy(update=promoted)
        result.append(entry)
    return result


def _final_radius(rollout: RolloutStatus, now: datetime) -> BlastRadius:
    return rollout.blast_radius.model_copy(update={"ended_at": now})


def _roll_back(rollout: RolloutStatus, why: str, now: datetime, work: Progress) -> None:
    key = (rollout.candidate_version, rollout.trigger_id)
    existing = next(
        (e for e in work.status.history if (e.version, e.trigger_id) == key),
        HistoryEntry(
            version=rollout.candidate_version,
            trigger="",
            trigger_id=rollout.trigger_id,
            outcome=HistoryOutcome.ROLLED_BACK,
            started_at=rollout.step_started_at,
        ),
    )
    entry = existing.model_copy(
        update={
            "outcome": HistoryOutcome.ROLLED_BACK,
            "finished_at": now,
            "message": why[:900],
            "blast_radius": _final_radius(rollout, now),
        }
    )
    work.update(
        rollout=None,
        failed_versions=work.fail_version(rollout.candidate_version),
        history=with_history(work.status, entry),
        last_rollback=why[:900],
    )
    work.event("Warning", EventReason.ROLLED_BACK, f"{rollout.candidate_version}: {why}"[:1000])
