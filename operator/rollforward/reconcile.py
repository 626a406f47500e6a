"""One reconcile of one ModelDeployment: gather, decide, apply.

Gather reads the children; decide (pure) turns resource + children + now into a plan; apply
writes children first and status last, once, and only what changed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rollforward.analysis import AnalysisInputs
from rollforward.api import (
    ModelDeployment,
    ModelDeploymentStatus,
    Reason,
    parse_model_deployment,
    validation_messages,
)
from rollforward.bentostore.gateway import StoreGateway
from rollforward.bentostore.gather import gather_store
from rollforward.builders import owner_reference
from rollforward.decide import Snapshot, decide
from rollforward.drift.check import DriftInputs
from rollforward.events import Event, coalesce
from rollforward.feedback_key import secret_manifest
from rollforward.fetch import FetchPlan, plan_fetch
from rollforward.looks import requeue_after
from rollforward.measurements import QueryResult
from rollforward.naming import feedback_key_name
from rollforward.ports import Cluster, MetricsSource
from rollforward.prometheus_access import PrometheusTarget, SecretReader, resolve_target
from rollforward.quality import QualityInputs
from rollforward.quality_estimate import EstimationInputs
from rollforward.settings import OperatorSettings
from rollforward.summary import invalid_spec

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
NO_PROMETHEUS = "no Prometheus configured (spec.monitoring.prometheusUrl)"


@dataclass(frozen=True)
class ReconcileResult:
    applied: int
    deleted: int
    status_written: bool
    status: ModelDeploymentStatus | None = None
    requeue_after: float | None = None
    """Seconds after which this resource wants another reconcile (a canary's next look)."""


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning `old` into `new`. Pure.

    The API server merges objects key by key at every depth, so a nested key that `new` lacks
    (a field that became None) must be sent as null, or the old value stays: an experiment
    restarted after a promotion kept its predecessor's concludedAt and effect, and never
    looked again. Lists are replaced whole, as merge patch does."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = status_patch(before, value)
            if nested:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    patch.update({key: None for key in old if key not in new})
    return patch


def dump_status(status: ModelDeploymentStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


Target = PrometheusTarget | QueryResult | None
"""Where to query: a URL with its access, the failure that answers every query (a missing
Secret), or None when no Prometheus is configured."""


def _query(source: MetricsSource, target: Target, promql: str, at: datetime) -> QueryResult:
    if target is None:
        return QueryResult(error=NO_PROMETHEUS, reason=Reason.NO_PROMETHEUS)
    if isinstance(target, QueryResult):
        return target
    return source.query(target.url, promql, at, target.access)


def fetch_drift(plan: FetchPlan, source: MetricsSource, target: Target) -> DriftInputs | None:
    if plan.drift is None:
        return None
    tick, queries = plan.drift.tick, plan.drift.queries
    if target is None:
        missing = QueryResult(error=NO_PROMETHEUS, reason=Reason.NO_PROMETHEUS)
        return DriftInputs(tick, missing, None, prometheus_configured=False)
    baseline = _query(source, target, queries.baseline, tick) if queries.baseline else None
    return DriftInputs(tick, _query(source, target, queries.current, tick), baseline)


def fetch_estimation(
    plan: FetchPlan, source: MetricsSource, target: Target
) -> EstimationInputs | None:
    """The histogram and calibration queries, shared by every resource at this tick."""
    if plan.estimation is None:
        return None
    tick, queries = plan.estimation.tick, plan.estimation.queries
    return EstimationInputs(
        tick,
        histogram=_query(source, target, queries.histogram, tick),
        calibration=_query(source, target, queries.calibration, tick),
    )


def gather_drift(
    deployment: ModelDeployment,
    source: MetricsSource,
    settings: OperatorSettings,
    now: datetime,
    read_secret: SecretReader | None = None,
) -> DriftInputs | None:
    """Run (or reuse, within this tick) the batched drift queries, if a check is due."""
    plan = plan_fetch(deployment, settings, now)
    if plan.drift is None:
        return None
    return fetch_drift(plan, source, resolve_target(deployment, settings, read_secret))


def gather_estimation(
    deployment: ModelDeployment,
    source: MetricsSource,
    settings: OperatorSettings,
    now: datetime,
    read_secret: SecretReader | None = None,
) -> EstimationInputs | None:
    """Run (or reuse, within this tick) the estimated-quality queries, if they are due."""
    plan = plan_fetch(deployment, settings, now)
    if plan.estimation is None:
        return None
    return fetch_estimation(plan, source, resolve_target(deployment, settings, read_secret))


def fetch_analysis(plan: FetchPlan, source: MetricsSource, target: Target) -> AnalysisInputs | None:
    """A look at the step: batched queries (shared per window and tick) over the step so far
    and over the canary so far, plus the user's custom queries, which are this resource's own."""
    if plan.analysis is None:
        return None
    tick, queries = plan.analysis.tick, plan.analysis.queries
    canary = plan.analysis.canary
    return AnalysisInputs(
        requests=_query(source, target, queries.requests, tick),
        errors=_query(source, target, queries.errors, tick),
        latency_p99=_query(source, target, queries.latency_p99, tick),
        predictions=_query(source, target, queries.predictions, tick),
        baseline=_query(source, target, queries.baseline, tick),
        custom={
            name: _query(source, target, query, tick)
            for name, query in plan.analysis.custom.items()
        },
        canary_requests=_query(source, target, canary.requests, tick),
        canary_errors=_query(source, target, canary.errors, tick),
    )


def fetch_quality(plan: FetchPlan, source: MetricsSource, target: Target) -> QualityInputs | None:
    """One interval's outcome counts: the batched query, shared per interval and tick."""
    if plan.quality is None:
        return None
    tick = plan.quality.tick
    return QualityInputs(tick, _query(source, target, plan.quality.query, tick))


def gather(
    deployment: ModelDeployment,
    kube: Cluster,
    source: MetricsSource,
    settings: OperatorSettings,
    now: datetime,
    stores: StoreGateway | None = None,
) -> Snapshot:
    """Fetch what `plan_fetch` names: no more, and no decision of its own."""
    plan = plan_fetch(deployment, settings, now)
    observed = kube.observe(deployment, plan.kinds)
    pods = (
        kube.retraining_pods(deployment.metadata.namespace, deployment.metadata.name)
        if plan.job_pods_of and ("Job", plan.job_pods_of) in observed.children
        else {}
    )
    reference = plan.reference
    # Secrets are read only when a query is due, not on every reconcile.
    wants_metrics = (
        plan.drift is not None
        or reference is not None
        or plan.analysis is not None
        or plan.quality is not None
    )
    target = resolve_target(deployment, settings, kube.read_secret) if wants_metrics else None
    jobs = {child: body for (kind, child), body in observed.children.items() if kind == "Job"}
    return Snapshot(
        observed=observed,
        job_pods=pods,
        bento_store=gather_store(deployment, settings, stores, jobs, pods),
        drift=fetch_drift(plan, source, target),
        reference=_query(source, target, reference.query, reference.at)
        if reference is not None
        else None,
        analysis=fetch_analysis(plan, source, target),
        estimation=fetch_estimation(plan, source, target),
        quality=fetch_quality(plan, source, target),
    )


def reconcile(
    body: dict[str, Any],
    kube: Cluster,
    source: MetricsSource,
    settings: OperatorSettings,
    now: Clock,
    stores: StoreGateway | None = None,
) -> ReconcileResult:
    """Bring one ModelDeployment's children and status in line with its spec."""
    namespace = body["metadata"].get("namespace", "default")
    name = body["metadata"]["name"]
    try:
        deployment = parse_model_deployment(body)
    except ValidationError as error:
        return _report_invalid(body, error, kube, now())

    ensure_feedback_key(deployment, kube)
    moment = now()
    snapshot = gather(deployment, kube, source, settings, moment, stores)
    plan = decide(deployment, snapshot, settings, moment)

    for manifest in plan.apply:
        kube.apply(manifest)
    for kind, child in plan.delete:
        kube.delete(namespace, kind, child)
    if stores is not None and snapshot.bento_store is not None:
        for tag in plan.bento_deletes:
            stores.delete(snapshot.bento_store.store, namespace, tag)

    old_status = body.get("status") or {}
    patch = status_patch(old_status, dump_status(plan.status))
    if patch:
        kube.patch_status(namespace, name, patch)
    for event in coalesce(plan.events):
        kube.post_event(deployment, event)
    after = requeue_after(deployment.model_copy(update={"status": plan.status}), now())
    return ReconcileResult(len(plan.apply), len(plan.delete), bool(patch), plan.status, after)


def ensure_feedback_key(deployment: ModelDeployment, kube: Cluster) -> None:
    """Create the Secret that signs prediction ids, before any bento pod needs it; one GET
    when it exists, and it is never rewritten (that would void every issued id)."""
    namespace, name = deployment.metadata.namespace, deployment.metadata.name
    if kube.read_secret(namespace, feedback_key_name(name)) is None:
        key = secrets.token_urlsafe(32)
        kube.create(secret_manifest(deployment, key, owner_reference(deployment)))


def _report_invalid(
    body: dict[str, Any], error: ValidationError, kube: Cluster, now: datetime
) -> ReconcileResult:
    """The API server validates first, so this is rare (an older CRD, say). Say which field."""
    message = "; ".join(validation_messages(error))[:1024]
    raw_status = body.get("status") or {}
    status = ModelDeploymentStatus.model_validate(raw_status)
    generation = body["metadata"].get("generation", 0)
    new = dump_status(invalid_spec(status, message, generation, now))
    patch = status_patch(raw_status, new)
    if patch:
        kube.patch_status(
            body["metadata"].get("namespace", "default"), body["metadata"]["name"], patch
        )
        log.warning("invalid ModelDeployment %s: %s", body["metadata"]["name"], message)
    return ReconcileResult(0, 0, bool(patch))


__all__ = ["Clock", "Event", "ReconcileResult", "reconcile", "status_patch"]
