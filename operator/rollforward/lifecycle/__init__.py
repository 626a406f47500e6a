"""The roll-forward state machine: trigger, retrain, gate, canary, promote or roll back. Pure.

    Stable --trigger--> Retraining --accepted--> Canary(step i) --all steps pass--> Promoting
      ^                    | rejected / failed        | failed / rollback request        |
      +--------------------+-------- RolledBack <-----+                                   |
      +------------------------------------------- Stable (new champion) <---------------+
    Stable --ChallengerBetter (spec.experiment, onChallengerBetter Promote)--> Canary(step 0)

All progress is in status; every function here takes status in and gives status out, so a
restarted operator continues from whatever status it finds. Inconclusive analysis holds (or
rolls back if the spec says so); it never counts as failed. The retraining half is in
`lifecycle.retraining`, the canary half in `lifecycle.canary`, the experiment's hand-over of
its challenger in `lifecycle.challenger`; the conditions and the phase
they lead to are rollforward.summary's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollforward.api import (
    HistoryEntry,
    HistoryOutcome,
    ModelDeployment,
    ModelDeploymentStatus,
)
from rollforward.events import Event
from rollforward.lifecycle import canary, challenger, retraining
from rollforward.lifecycle.canary import analysis_due, rollout_hash, step_complete
from rollforward.lifecycle.progress import LifecycleInputs, Progress, is_paused
from rollforward.observed import Manifest
from rollforward.summary import Facts, summarize
from rollforward.variants import champion_version


@dataclass(frozen=True)
class LifecycleResult:
    status: ModelDeploymentStatus
    jobs: list[Manifest]
    delete_jobs: list[str]
    events: list[Event]
    promoted: str | None = None
    """The version this step promoted, if any."""


def step(deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime) -> LifecycleResult:
    """One step of the state machine on `deployment.status`; conditions and phase untouched."""
    work = Progress(status=deployment.status)
    if not work.status.history:
        initial = HistoryEntry(
            version=champion_version(deployment.spec, work.status),
            trigger="initial",
            outcome=HistoryOutcome.SERVING,
            started_at=now,
        )
        work.update(history=[initial])
    retraining.follow(deployment, inputs, now, work)
    if work.status.rollout is not None:
        canary.follow(deployment, inputs, now, work)
    challenger.maybe_hand_over(deployment, now, work)
    retraining.maybe_start(deployment, now, work)
    return LifecycleResult(work.status, work.jobs, work.delete_jobs, work.events, work.promoted)


def advance(deployment: ModelDeployment, inputs: LifecycleInputs, now: datetime) -> LifecycleResult:
    """One step, with the conditions and phase it leads to (the lifecycle seen on its own)."""
    result = step(deployment, inputs, now)
    view = deployment.model_copy(update={"status": result.status})
    status = summarize(view, result.status, Facts(promoted=result.promoted), now)
    return LifecycleResult(status, result.jobs, result.delete_jobs, result.events, result.promoted)


__all__ = [
    "LifecycleInputs",
    "LifecycleResult",
    "advance",
    "analysis_due",
    "is_paused",
    "rollout_hash",
    "step",
    "step_complete",
]
