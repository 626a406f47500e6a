"""What one reconcile must read, decided from (spec, status, now) alone. Pure.

Gather (rollforward.reconcile) fetches exactly this and nothing else, and never asks the
decisions anything: what is due, which queries, which instant, are all named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollforward.analysis import AnalysisQueries, analysis_queries, custom_query
from rollforward.api import ModelDeployment
from rollforward.drift.check import DriftQueries, check_is_due, check_tick, drift_queries
from rollforward.drift.check import reference_query as reference_window_query
from rollforward.lifecycle import analysis_due
from rollforward.looks import canary_window_seconds, look_tick, step_window_seconds
from rollforward.naming import CANDIDATE_VARIANT
from rollforward.quality import quality_is_due, quality_query, quality_tick
from rollforward.quality_estimate import EstimationQueries, estimation_queries
from rollforward.serving_plan import MANAGED_KINDS
from rollforward.settings import OperatorSettings

OBSERVED_KINDS = (*MANAGED_KINDS, "Job")
"""The children a reconcile lists: the serving kinds and the retraining Jobs."""


@dataclass(frozen=True)
class DriftFetch:
    """The drift check's queries, evaluated at the check's aligned tick."""

    tick: datetime
    queries: DriftQueries


@dataclass(frozen=True)
class EstimationFetch:
    """The estimated-quality queries, at the drift check's tick (same window, same cadence)."""

    tick: datetime
    queries: EstimationQueries


@dataclass(frozen=True)
class ReferenceFetch:
    """The one-off query of the reference window after a promotion, and its instant."""

    query: str
    at: datetime


@dataclass(frozen=True)
class AnalysisFetch:
    """A canary step's measurements: the shared queries and the user's own, at one tick."""

    tick: datetime
    queries: AnalysisQueries
    """Over the step so far."""
    canary: AnalysisQueries
    """Over the canary so far (since the candidate started serving): the blast radius."""
    custom: dict[str, str] = field(default_factory=dict)
    """The user's custom metric queries, by metric name."""


@dataclass(frozen=True)
class QualityFetch:
    """One interval's outcome, prediction and label-delay counts: one query, shared by every
    resource on the Prometheus (rollforward.quality)."""

    tick: datetime
    query: str


@dataclass(frozen=True)
class FetchPlan:
    prometheus_url: str | None
    """None: no Prometheus is configured (spec.monitoring.prometheusUrl nor the operator's)."""
    kinds: tuple[str, ...] = OBSERVED_KINDS
    job_pods_of: str | None = None
    """The retraining Job whose pod's termination message is wanted, if that Job exists."""
    drift: DriftFetch | None = None
    reference: ReferenceFetch | None = None
    analysis: AnalysisFetch | None = None
    estimation: EstimationFetch | None = None
    quality: QualityFetch | None = None


def prometheus_url(deployment: ModelDeployment, settings: OperatorSettings) -> str | None:
    return deployment.spec.monitoring.prometheus_url or settings.prometheus_url


def plan_fetch(deployment: ModelDeployment, settings: OperatorSettings, now: datetime) -> FetchPlan:
    url = prometheus_url(deployment, settings)
    retraining = deployment.status.retraining
    due = check_is_due(deployment, now)
    return FetchPlan(
        prometheus_url=url,
        job_pods_of=retraining.job_name if retraining is not None else None,
        drift=DriftFetch(check_tick(deployment, now), drift_queries(deployment)) if due else None,
        reference=_reference(deployment, url, now),
        analysis=_analysis(deployment, now) if analysis_due(deployment, now) else None,
        estimation=EstimationFetch(check_tick(deployment, now), estimation_queries(deployment))
        if due
        else None,
        quality=QualityFetch(quality_tick(deployment, now), quality_query(deployment))
        if quality_is_due(deployment, now)
        else None,
    )


def _reference(
    deployment: ModelDeployment, url: str | None, now: datetime
) -> ReferenceFetch | None:
    """Once, as soon as the reference window after a promotion has closed."""
    wanted = reference_window_query(deployment)
    if wanted is None or url is None or deployment.status.reference_counts is not None:
        return None
    query, at = wanted
    return ReferenceFetch(query, at) if at <= now else None


def _analysis(deployment: ModelDeployment, now: datetime) -> AnalysisFetch:
    """A look at the step, at the tick of its analysis interval (rollforward.looks)."""
    tick = look_tick(deployment, now)
    rollout = deployment.status.rollout
    custom = {
        metric.name: custom_query(metric, deployment, CANDIDATE_VARIANT)
        for metric in deployment.spec.rollout.analysis.metrics
    }
    return AnalysisFetch(
        tick,
        analysis_queries(step_window_seconds(rollout, tick)),
        analysis_queries(canary_window_seconds(rollout, tick)),
        custom,
    )
