"""Decide: from (resource, observed children, metrics, now) to what to write. Pure.

The order matters and is the same every time: the drift check moves the drift status,
the roll-forward state machine moves its progress on that status, and the serving plan
turns the result into children and the summary conditions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollforward.api import ModelDeployment
from rollforward.drift.check import DriftInputs, apply_check, run_check
from rollforward.events import Event
from rollforward.lifecycle import LifecycleInputs, advance
from rollforward.observed import ChildKey, Observed
from rollforward.serving_plan import ServingPlan, plan_serving
from rollforward.settings import OperatorSettings


@dataclass(frozen=True)
class Snapshot:
    """Everything gather read for one reconcile."""

    observed: Observed
    drift: DriftInputs | None = None
    """Set when a drift check is due this reconcile."""
    reference_counts: dict[str, dict[str, float]] | None = None
    """The reference window's counts, when they were measured this reconcile."""
    lifecycle: LifecycleInputs = field(default_factory=LifecycleInputs)


def decide(
    deployment: ModelDeployment, snapshot: Snapshot, settings: OperatorSettings, now: datetime
) -> ServingPlan:
    status = deployment.status
    events: list[Event] = []
    if snapshot.reference_counts is not None:
        status = status.model_copy(update={"reference_counts": snapshot.reference_counts})
    if snapshot.drift is not None:
        check = run_check(deployment.model_copy(update={"status": status}), snapshot.drift)
        status, drift_events = apply_check(deployment, status, check, now)
        events += drift_events
    progress = advance(deployment.model_copy(update={"status": status}), snapshot.lifecycle, now)
    events += progress.events
    plan = plan_serving(deployment, snapshot.observed, settings, now, progress.status)
    deletes: list[ChildKey] = [*plan.delete, *(("Job", name) for name in progress.delete_jobs)]
    return ServingPlan(
        apply=[*plan.apply, *progress.jobs],
        delete=deletes,
        events=events + plan.events,
        status=plan.status,
    )
