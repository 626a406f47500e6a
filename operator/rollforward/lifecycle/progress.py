"""The scratchpad one advance of the state machine writes into, and the helpers that the
retraining and canary halves share (history entries, one-shot requests). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from rollforward.analysis import AnalysisInputs
from rollforward.api import (
    EventReason,
    HistoryEntry,
    HistoryOutcome,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    RetrainingStatus,
)
from rollforward.api import annotations as steering
from rollforward.events import Event
from rollforward.observed import DeploymentHealth, Manifest
from rollforward.serving.objectstore.client import Answer

HANDLED_REQUESTS_KEPT = 20
FAILED_VERSIONS_KEPT = 50


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
    stored_bentos: dict[str, Answer] | None = None
    """The bento store's answer for a finished Job's candidate; None without a store."""


@dataclass
class Progress:
    """The mutable scratchpad of one advance; turned into a LifecycleResult at the end."""

    status: ModelDeploymentStatus
    events: list[Event] = field(default_factory=list)
    jobs: list[Manifest] = field(default_factory=list)
    delete_jobs: list[str] = field(default_factory=list)
    promoted: str | None = None
    """The version promoted in this advance (the summary resets Drifted for it)."""

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def view(self, deployment: ModelDeployment) -> ModelDeployment:
        """The resource as the decisions so far left it."""
        return deployment.model_copy(update={"status": self.status})

    def handle(self, key: str) -> None:
        """Remember a one-shot request as acted on."""
        kept = [*self.status.handled_requests, key][-HANDLED_REQUESTS_KEPT:]
        self.update(handled_requests=kept)

    def fail_version(self, version: str) -> list[str]:
        failed = self.status.failed_versions
        if not version or version in failed:
            return failed
        return [*failed, version][-FAILED_VERSIONS_KEPT:]


def pending_request(deployment: ModelDeployment, annotation: str) -> str | None:
    """The handledRequests key of a one-shot request not acted on yet, or None."""
    value = deployment.metadata.annotations.get(annotation)
    if not value:
        return None
    key = steering.request_key(annotation, value)
    return None if key in deployment.status.handled_requests else key


def is_paused(deployment: ModelDeployment) -> bool:
    return steering.is_paused(deployment.metadata.annotations)


def ended(
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


def history_entry(
    current: RetrainingStatus,
    version: str,
    outcome: HistoryOutcome,
    message: str,
    metrics: dict[str, float] | None = None,
    finished_at: datetime | None = None,
) -> HistoryEntry:
    """The history entry of this trigger's candidate (or failed Job)."""
    return HistoryEntry(
        version=version or f"job {current.job_name}",
        trigger=current.trigger,
        trigger_id=current.trigger_id,
        outcome=outcome,
        metrics=metrics or {},
        message=message,
        started_at=current.started_at,
        finished_at=finished_at,
    )


__all__ = ["EventReason", "LifecycleInputs", "Progress"]
