"""The steering actions: which annotation each writes, and what the operator will do.

Pure: from the ModelDeployment as read and a request id to a plan. The CLI never edits
spec; it writes one annotation (rollforward.api.annotations), and the operator acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rollforward.api import ModelDeployment
from rollforward.api import annotations as steering


class Action(StrEnum):
    """The five verbs a person can say to a running ModelDeployment."""

    APPROVE = "approve"
    """Promote the candidate waiting for Manual approval."""
    ROLLBACK = "rollback"
    """Abort the canary; the champion gets all traffic again."""
    PAUSE = "pause"
    """Hold the rollout and retraining where they are."""
    RESUME = "resume"
    """Continue after pause."""
    RETRAIN = "retrain"
    """Start a retraining Job now."""


@dataclass(frozen=True)
class ActionPlan:
    """What one action would write, and what it means."""

    action: Action
    patch: dict[str, str | None]
    """A merge patch of metadata.annotations (None removes the annotation)."""
    will_happen: str
    """What the operator will do on its next reconcile, in words."""
    refused: str = ""
    """Set when the action makes no sense in this state; nothing is written without --force."""
    nothing_to_do: str = ""
    """Set when the state already is what the action asks for; nothing is written."""


_ROLLOUT_PHASES = {"Canary", "AwaitingApproval", "Paused", "Promoting"}


def is_paused(md: ModelDeployment) -> bool:
    """The operator's own reading of the pause annotation (one implementation)."""
    return steering.is_paused(md.metadata.annotations)


def plan_action(action: Action, md: ModelDeployment, request_id: str) -> ActionPlan:
    """Decide the annotation patch for `action` on `md`. `request_id` makes a one-shot
    request unique, so the operator honours it exactly once."""
    planners = {
        Action.APPROVE: _approve,
        Action.ROLLBACK: _rollback,
        Action.PAUSE: _pause,
        Action.RESUME: _resume,
        Action.RETRAIN: _retrain,
    }
    return planners[action](md, request_id)


def _approve(md: ModelDeployment, request_id: str) -> ActionPlan:
    rollout = md.status.rollout
    candidate = rollout.candidate_version if rollout else "the candidate"
    plan = ActionPlan(
        Action.APPROVE,
        {steering.APPROVE: request_id},
        f"the operator will promote {candidate} to champion (the champion Deployment rolls to"
        f" it, then {md.status.champion or 'the old champion'} becomes history)",
    )
    waiting = rollout is not None and rollout.awaiting_approval
    if not waiting and md.status.phase.value != "AwaitingApproval":
        return _refuse(
            plan,
            f"nothing awaits approval: the phase is {md.status.phase.value}, not AwaitingApproval",
        )
    return plan


def _rollback(md: ModelDeployment, request_id: str) -> ActionPlan:
    rollout = md.status.rollout
    candidate = rollout.candidate_version if rollout else md.status.challenger or "the candidate"
    plan = ActionPlan(
        Action.ROLLBACK,
        {steering.ROLLBACK: request_id},
        f"the operator will abort the canary of {candidate}, give the champion"
        f" {md.status.champion or ''} all the traffic, and never deploy {candidate} again",
    )
    if rollout is None and md.status.phase.value not in _ROLLOUT_PHASES:
        return _refuse(plan, f"no canary is under way to roll back (phase {md.status.phase.value})")
    return plan


def _pause(md: ModelDeployment, _request_id: str) -> ActionPlan:
    plan = ActionPlan(
        Action.PAUSE,
        {steering.PAUSED: "true"},
        "the rollout and retraining will make no further step until `resume`;"
        " serving and drift checks go on",
    )
    if is_paused(md):
        return ActionPlan(plan.action, {}, plan.will_happen, nothing_to_do="already paused")
    return plan


def _resume(md: ModelDeployment, _request_id: str) -> ActionPlan:
    plan = ActionPlan(
        Action.RESUME,
        {steering.PAUSED: None},
        "the operator will continue the rollout and retraining from where they stopped",
    )
    if not is_paused(md):
        return ActionPlan(plan.action, {}, plan.will_happen, nothing_to_do="not paused")
    return plan


def _retrain(md: ModelDeployment, request_id: str) -> ActionPlan:
    retraining = md.spec.retraining
    limits = (
        f" (within cooldown {retraining.cooldown} and at most {retraining.max_per_day} a day)"
        if retraining
        else ""
    )
    will = f"the operator will start a retraining Job, trigger manual{limits}"
    if is_paused(md):
        will += "; the ModelDeployment is paused, so the Job starts after `resume`"
    plan = ActionPlan(Action.RETRAIN, {steering.RETRAIN: request_id}, will)
    if retraining is None:
        return _refuse(plan, "spec.retraining is not set, so there is no Job to run")
    job = md.status.retraining
    if job is not None and job.phase.value == "Running":
        return _refuse(plan, f"retraining Job {job.job_name} is still running")
    return plan


def _refuse(plan: ActionPlan, why: str) -> ActionPlan:
    return ActionPlan(plan.action, plan.patch, plan.will_happen, refused=why)
