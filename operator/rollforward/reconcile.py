"""One reconcile of one ModelDeployment: gather, decide, apply.

Gather reads the children; decide (pure) turns resource + children + now into a plan; apply
writes children first and status last, once, and only what changed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rollforward.analysis import AnalysisInputs, analysis_queries, custom_query
from rollforward.api import (
    ConditionType,
    ModelDeployment,
    ModelDeploymentStatus,
    Reason,
    VariantRole,
    parse_model_deployment,
    validation_messages,
)
from rollforward.conditions import set_condition
from rollforward.decide import Snapshot, decide
from rollforward.drift.check import (
    DriftInputs,
    check_is_due,
    check_tick,
    drift_queries,
    reference_counts,
    reference_query,
)
from rollforward.events import Event
from rollforward.lifecycle import LifecycleInputs, analysis_due, step_window_seconds
from rollforward.measurements import QueryResult
from rollforward.naming import CANDIDATE_VARIANT, variant_name
from rollforward.observed import Observed, deployment_health
from rollforward.ports import Cluster, MetricsSource
from rollforward.serving_plan import MANAGED_KINDS
from rollforward.settings import OperatorSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ANALYSIS_TICK_SECONDS = 5
"""Canary measurements are evaluated at times aligned to this, so canaries share queries."""


@dataclass(frozen=True)
class ReconcileResult:
    applied: int
    deleted: int
    status_written: bool
    status: ModelDeploymentStatus | None = None


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `old` into `new` at the top level (null removes a key)."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


def dump_status(status: ModelDeploymentStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def prometheus_url(deployment: ModelDeployment, settings: OperatorSettings) -> str | None:
    return deployment.spec.monitoring.prometheus_url or settings.prometheus_url


def gather_drift(
    deployment: ModelDeployment, source: MetricsSource, settings: OperatorSettings, now: datetime
) -> DriftInputs | None:
    """Run (or reuse, within this tick) the batched drift queries, if a check is due."""
    if not check_is_due(deployment, now):
        return None
    tick = check_tick(deployment, now)
    url = prometheus_url(deployment, settings)
    if url is None:
        missing = QueryResult(error="no Prometheus configured (spec.monitoring.prometheusUrl)")
        return DriftInputs(tick=tick, current=missing, baseline=None)
    queries = drift_queries(deployment)
    current = source.query(url, queries.current, tick)
    baseline = source.query(url, queries.baseline, tick) if queries.baseline else None
    return DriftInputs(tick=tick, current=current, baseline=baseline)


def gather_reference(
    deployment: ModelDeployment, source: MetricsSource, settings: OperatorSettings, now: datetime
) -> dict[str, dict[str, float]] | None:
    """The reference window's counts, once, as soon as the window after promotion closed."""
    wanted = reference_query(deployment)
    url = prometheus_url(deployment, settings)
    if wanted is None or url is None or deployment.status.reference_counts is not None:
        return None
    query, at = wanted
    if at > now:
        return None
    result = source.query(url, query, at)
    if not result.ok:
        return None
    counts = reference_counts(deployment, result)
    return counts or None


def gather_lifecycle(
    deployment: ModelDeployment,
    observed: Observed,
    kube: Cluster,
    source: MetricsSource,
    settings: OperatorSettings,
    now: datetime,
) -> LifecycleInputs:
    """Jobs, their pods, the candidate, and the canary's measurements when they are due."""
    name = deployment.metadata.name
    jobs = {child: body for (kind, child), body in observed.children.items() if kind == "Job"}
    current = deployment.status.retraining
    pods = (
        kube.retraining_pods(deployment.metadata.namespace, name)
        if current is not None and current.job_name in jobs
        else {}
    )
    champion = next(v.name for v in deployment.spec.variants if v.role is VariantRole.CHAMPION)
    return LifecycleInputs(
        jobs=jobs,
        job_pods=pods,
        candidate=deployment_health(
            observed.get("Deployment", variant_name(name, CANDIDATE_VARIANT))
        ),
        champion_deployment=observed.get("Deployment", variant_name(name, champion)),
        analysis=gather_analysis(deployment, source, settings, now)
        if analysis_due(deployment, now)
        else None,
    )


def gather_analysis(
    deployment: ModelDeployment, source: MetricsSource, settings: OperatorSettings, now: datetime
) -> AnalysisInputs:
    """The step's measurements: batched queries (shared per window and tick), plus the
    user's custom queries, which are this resource's own."""
    url = prometheus_url(deployment, settings)
    if url is None:
        missing = QueryResult(error="no Prometheus configured (spec.monitoring.prometheusUrl)")
        return AnalysisInputs(missing, missing, missing, missing, missing)
    tick = datetime.fromtimestamp(
        math.floor(now.timestamp() / ANALYSIS_TICK_SECONDS) * ANALYSIS_TICK_SECONDS, UTC
    )
    queries = analysis_queries(step_window_seconds(deployment))
    custom = {
        metric.name: source.query(url, custom_query(metric, deployment, CANDIDATE_VARIANT), tick)
        for metric in deployment.spec.rollout.analysis.metrics
    }
    return AnalysisInputs(
        requests=source.query(url, queries.requests, tick),
        errors=source.query(url, queries.errors, tick),
        latency_p99=source.query(url, queries.latency_p99, tick),
        predictions=source.query(url, queries.predictions, tick),
        baseline=source.query(url, queries.baseline, tick),
        custom=custom,
    )


def gather(
    deployment: ModelDeployment,
    kube: Cluster,
    source: MetricsSource,
    settings: OperatorSettings,
    now: datetime,
) -> Snapshot:
    observed = kube.observe(deployment, (*MANAGED_KINDS, "Job"))
    return Snapshot(
        observed=observed,
        drift=gather_drift(deployment, source, settings, now),
        reference_counts=gather_reference(deployment, source, settings, now),
        lifecycle=gather_lifecycle(deployment, observed, kube, source, settings, now),
    )


def reconcile(
    body: dict[str, Any],
    kube: Cluster,
    source: MetricsSource,
    settings: OperatorSettings,
    now: Clock,
) -> ReconcileResult:
    """Bring one ModelDeployment's children and status in line with its spec."""
    namespace = body["metadata"].get("namespace", "default")
    name = body["metadata"]["name"]
    try:
        deployment = parse_model_deployment(body)
    except ValidationError as error:
        return _report_invalid(body, error, kube, now())

    moment = now()
    snapshot = gather(deployment, kube, source, settings, moment)
    plan = decide(deployment, snapshot, settings, moment)

    for manifest in plan.apply:
        kube.apply(manifest)
    for kind, child in plan.delete:
        kube.delete(namespace, kind, child)

    old_status = body.get("status") or {}
    patch = status_patch(old_status, dump_status(plan.status))
    if patch:
        kube.patch_status(namespace, name, patch)
    for event in plan.events:
        kube.post_event(deployment, event)
    return ReconcileResult(len(plan.apply), len(plan.delete), bool(patch), plan.status)


def _report_invalid(
    body: dict[str, Any], error: ValidationError, kube: Cluster, now: datetime
) -> ReconcileResult:
    """The API server validates first, so this is rare (an older CRD, say). Say which field."""
    message = "; ".join(validation_messages(error))[:1024]
    raw_status = body.get("status") or {}
    status = ModelDeploymentStatus.model_validate(raw_status)
    conditions = set_condition(
        status.conditions,
        ConditionType.READY,
        "False",
        Reason.INVALID_SPEC,
        message,
        body["metadata"].get("generation", 0),
        now,
    )
    new = dump_status(status.model_copy(update={"conditions": conditions}))
    patch = status_patch(raw_status, new)
    if patch:
        kube.patch_status(
            body["metadata"].get("namespace", "default"), body["metadata"]["name"], patch
        )
        log.warning("invalid ModelDeployment %s: %s", body["metadata"]["name"], message)
    return ReconcileResult(0, 0, bool(patch))


__all__ = ["Clock", "Event", "ReconcileResult", "reconcile", "status_patch"]
