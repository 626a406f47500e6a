"""The one-word phase, summarised from the status the decisions wrote. Pure."""

from __future__ import annotations

from rollforward.api import JobPhase, ModelDeploymentStatus, Phase


def lifecycle_phase(status: ModelDeploymentStatus) -> Phase:
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
