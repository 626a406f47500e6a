"""Decide: from (resource, what gather fetched, now) to what to write. Pure.

The order matters and is the same every time: the drift check moves the drift status,
the roll-forward state machine moves its progress on that status, the serving plan turns
the result into children, and the summary computes every condition and the phase, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollforward.analysis import AnalysisInputs
from rollforward.api import ModelDeployment, ModelDeploymentStatus
from rollforward.bentostore.view import (
    StoreView,
    deletions,
    store_facts,
    with_store_env,
    with_variant_reasons,
)
from rollforward.drift.check import (
    DriftInputs,
    check_events,
    record_check,
    reference_counts,
    run_check,
)
from rollforward.events import Event
from rollforward.lifecycle import LifecycleInputs
from rollforward.lifecycle import step as lifecycle_step
from rollforward.measurements import QueryResult
from rollforward.naming import CANDIDATE_VARIANT, variant_name
from rollforward.observed import ChildKey, Manifest, Observed, deployment_health
from rollforward.quality import QualityInputs, with_quality
from rollforward.quality_estimate import EstimationInputs, estimate_quality
from rollforward.serving_plan import ServingPlan, plan_children
from rollforward.settings import OperatorSettings
from rollforward.summary import Facts, summarize


@dataclass(frozen=True)
class Snapshot:
    """Everything gather read for one reconcile (what rollforward.fetch asked for)."""

    observed: Observed
    job_pods: dict[str, Manifest] = field(default_factory=dict)
    """The pod of each retraining Job, by Job name."""
    drift: DriftInputs | None = None
    """Set when a drift check is due this reconcile."""
    reference: QueryResult | None = None
    """The reference window's counts, when they were measured this reconcile."""
    analysis: AnalysisInputs | None = None
    """The canary step's measurements, when its analysis is due."""
    bento_store: StoreView | None = None
    """The bento store's answers; None when no store is configured."""
    estimation: EstimationInputs | None = None
    """The score histogram and calibrations, when the drift check is due."""
    quality: QualityInputs | None = None
    """One interval's outcome counts, when a quality reading is due."""


def lifecycle_inputs(deployment: ModelDeployment, snapshot: Snapshot) -> LifecycleInputs:
    """Jobs, their pods, the candidate and the champion, read from the snapshot."""
    observed, name = snapshot.observed, deployment.metadata.name
    jobs = {child: body for (kind, child), body in observed.children.items() if kind == "Job"}
    candidate = observed.get("Deployment", variant_name(name, CANDIDATE_VARIANT))
    champion = deployment.spec.champion().name
    return LifecycleInputs(
        jobs=jobs,
        job_pods=snapshot.job_pods,
        candidate=deployment_health(candidate),
        champion_deployment=observed.get("Deployment", variant_name(name, champion)),
        analysis=snapshot.analysis,
        stored_bentos=snapshot.bento_store.answers if snapshot.bento_store else None,
    )


def _with_reference(
    deployment: ModelDeployment, reference: QueryResult | None
) -> ModelDeploymentStatus:
    if reference is None or not reference.ok:
        return deployment.status
    counts = reference_counts(deployment, reference)
    return (
        deployment.status.model_copy(update={"reference_counts": counts})
        if counts
        else deployment.status
    )


def _exists(job: Manifest, observed: Observed) -> bool:
    """A Job's pod template is immutable, and it carries the drift report of the moment it
    was created. One that exists under the attempt's name (created just before a crash lost
    the status write) is adopted as it is: re-applied with a newer report, the API server
    refused it on every reconcile and the roll-forward stalled (soak run 107)."""
    return ("Job", job["metadata"]["name"]) in observed.children


def decide(
    deployment: ModelDeployment, snapshot: Snapshot, settings: OperatorSettings, now: datetime
) -> ServingPlan:
    status = _with_reference(deployment, snapshot.reference)
    events: list[Event] = []
    check = None
    if snapshot.drift is not None:
        check = run_check(deployment.model_copy(update={"status": status}), snapshot.drift)
        events += check_events(status, check)
        status = record_check(status, check)
    if snapshot.estimation is not None:
        estimated = estimate_quality(deployment, snapshot.estimation)
        status = status.model_copy(update={"estimated_quality": estimated})
    status, quality_events = with_quality(
        deployment.model_copy(update={"status": status}), snapshot.quality, now
    )
    events += quality_events
    view = deployment.model_copy(update={"status": status})
    progress = lifecycle_step(view, lifecycle_inputs(view, snapshot), now)
    children = plan_children(deployment, snapshot.observed, settings, progress.status)
    store = snapshot.bento_store
    serving = store_facts(children.facts, children.status, store)
    facts = Facts(drift=check, promoted=progress.promoted, serving=serving)
    deletes: list[ChildKey] = [*children.delete, *(("Job", job) for job in progress.delete_jobs)]
    status = summarize(deployment, with_variant_reasons(children.status, store), facts, now)
    new_jobs = [job for job in progress.jobs if not _exists(job, snapshot.observed)]
    return ServingPlan(
        apply=[*children.apply, *with_store_env(new_jobs, store)],
        delete=deletes,
        events=[*events, *progress.events, *children.events],
        status=status,
        bento_deletes=deletions(deployment, status, store),
    )
