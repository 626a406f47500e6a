"""One drift check of one ModelDeployment, from query results to status. Pure.

Gather (rollforward.reconcile) runs the batched queries named by `drift_queries` at the
aligned tick; this module picks this resource's series out of the shared results, runs the
statistics, advances the hysteresis and says what the conditions and Events become.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rollforward.api import (
    BaselineKind,
    ConditionType,
    DriftCheckReport,
    DriftTracking,
    DriftVerdict,
    EffectReport,
    EventReason,
    LabelProportion,
    ModelDeployment,
    ModelDeploymentStatus,
    Reason,
    SegmentReport,
    duration_seconds,
)
from rollforward.conditions import find_condition
from rollforward.drift.calibration import mean_days_between_false_episodes
from rollforward.drift.hysteresis import HysteresisPolicy, next_state
from rollforward.drift.statistics import (
    Baseline,
    BaselineCounts,
    BaselineProportions,
    DriftCriteria,
    evaluate_segments,
)
from rollforward.drift.statistics import DriftReport as StatisticsReport
from rollforward.events import Event
from rollforward.measurements import QueryResult, Sample
from rollforward.serving.contract import BASELINE_RATIO, PREDICTIONS_TOTAL
from rollforward.summary import drift_conditions
from rollforward.variants import champion_version

_GROUPING = "namespace, model, version, variant, label, segment"


@dataclass(frozen=True)
class DriftQueries:
    """The PromQL a check needs. The same text for every resource with the same window
    (and offset), so one evaluation per tick serves them all."""

    current: str
    baseline: str | None
    """None for the reference baseline, whose counts are kept in status once measured."""


@dataclass(frozen=True)
class DriftInputs:
    tick: datetime
    current: QueryResult
    baseline: QueryResult | None
    prometheus_configured: bool = True
    """False when no Prometheus URL is set (spec.monitoring.prometheusUrl nor the operator's)."""


@dataclass(frozen=True)
class Missing:
    """Why a check has nothing to test, in the MonitoringAvailable condition's terms."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class DriftCheck:
    """What one check decided."""

    report: DriftCheckReport
    tracking: DriftTracking
    monitoring: Reason
    """METRICS_OK when the check could decide; otherwise why it could not."""


def check_tick(deployment: ModelDeployment, now: datetime) -> datetime:
    """The check time, aligned down to the interval, so resources share their queries."""
    interval = duration_seconds(deployment.spec.drift.interval)
    return datetime.fromtimestamp(math.floor(now.timestamp() / interval) * interval, UTC)


def check_is_due(deployment: ModelDeployment, now: datetime) -> bool:
    last = deployment.status.drift_tracking.last_check_at
    return last is None or check_tick(deployment, now) > last


def drift_queries(deployment: ModelDeployment) -> DriftQueries:
    drift = deployment.spec.drift
    window = f"{int(duration_seconds(drift.window))}s"
    current = f"sum by ({_GROUPING}) (increase({PREDICTIONS_TOTAL}[{window}]))"
    kind = drift.baseline.kind
    if kind is BaselineKind.TRAINING:
        baseline = f"max by (namespace, model, version, label) ({BASELINE_RATIO})"
    elif kind is BaselineKind.SEASONAL:
        assert drift.baseline.offset is not None, "the API requires an offset for seasonal"
        offset = f"{int(duration_seconds(drift.baseline.offset))}s"
        baseline = f"sum by ({_GROUPING}) (increase({PREDICTIONS_TOTAL}[{window}] offset {offset}))"
    else:
        baseline = None
    return DriftQueries(current=current, baseline=baseline)


def reference_query(deployment: ModelDeployment) -> tuple[str, datetime] | None:
    """The one-off query of the reference window (and when to evaluate it), once it closed."""
    drift = deployment.spec.drift
    promoted = deployment.status.promoted_at
    if drift.baseline.kind is not BaselineKind.REFERENCE or promoted is None:
        return None
    length = drift.baseline.reference_window or drift.window
    window = f"{int(duration_seconds(length))}s"
    query = f"sum by ({_GROUPING}) (increase({PREDICTIONS_TOTAL}[{window}]))"
    return query, datetime.fromtimestamp(promoted.timestamp() + duration_seconds(length), UTC)


def reference_counts(
    deployment: ModelDeployment, result: QueryResult
) -> dict[str, dict[str, float]]:
    """This resource's champion counts in the reference window, by segment."""
    version = champion_version(deployment.spec, deployment.status)
    samples = _mine(result.samples, deployment, version=version, variant=_champion_name(deployment))
    return _counts_by_segment(samples)


def _champion_name(deployment: ModelDeployment) -> str:
    return deployment.spec.champion().name


def _mine(samples: Iterable[Sample], deployment: ModelDeployment, **match: str) -> list[Sample]:
    wanted = {"namespace": deployment.metadata.namespace, "model": deployment.spec.model, **match}
    return [s for s in samples if all(s.labels.get(k, "") == v for k, v in wanted.items())]


def _counts_by_segment(samples: Iterable[Sample]) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        counts[sample.labels.get("segment", "")][sample.labels.get("label", "")] += sample.value
    return {segment: dict(labels) for segment, labels in counts.items()}


def criteria(deployment: ModelDeployment) -> DriftCriteria:
    drift = deployment.spec.drift
    return DriftCriteria(
        statistic=drift.statistic,
        alpha=drift.significance,
        threshold=drift.threshold,
        noise_floor_multiplier=drift.noise_floor_multiplier,
        min_samples=drift.min_samples,
        min_effect=drift.min_effect,
        min_baseline_samples=drift.min_samples,
    )


def _baseline(
    deployment: ModelDeployment, inputs: DriftInputs, version: str
) -> Baseline | dict[str, Baseline] | Missing:
    """The baseline for this resource, or why it is missing."""
    kind = deployment.spec.drift.baseline.kind
    if kind is BaselineKind.REFERENCE:
        stored = deployment.status.reference_counts
        if not stored:
            return Missing(Reason.NO_DATA, "the reference window has not been measured yet")
        return {s: BaselineCounts(counts=c) for s, c in stored.items()}
    if inputs.baseline is None or not inputs.baseline.ok:
        error = inputs.baseline.error if inputs.baseline is not None else "no baseline query"
        reason = inputs.baseline.reason if inputs.baseline is not None else None
        return Missing(reason or Reason.PROMETHEUS_UNREACHABLE, f"baseline query failed: {error}")
    if kind is BaselineKind.TRAINING:
        ratios = {
            s.labels.get("label", ""): s.value
            for s in _mine(inputs.baseline.samples, deployment, version=version)
        }
        if not ratios:
            return Missing(Reason.NO_DATA, f"version {version} exports no {BASELINE_RATIO}")
        return BaselineProportions(proportions=ratios)
    samples = _mine(inputs.baseline.samples, deployment, variant=_champion_name(deployment))
    if not samples:
        return Missing(Reason.NO_DATA, "no predictions in the seasonal window")
    return {s: BaselineCounts(counts=c) for s, c in _counts_by_segment(samples).items()}


def evaluate(deployment: ModelDeployment, inputs: DriftInputs) -> StatisticsReport | Missing:
    """The statistics report for this resource, or why there is nothing to test."""
    if not inputs.prometheus_configured:
        return Missing(Reason.NO_PROMETHEUS, inputs.current.error or "no Prometheus configured")
    if not inputs.current.ok:
        reason = inputs.current.reason or Reason.PROMETHEUS_UNREACHABLE
        return Missing(reason, f"query failed: {inputs.current.error}")
    version = champion_version(deployment.spec, deployment.status)
    current = _mine(
        inputs.current.samples, deployment, version=version, variant=_champion_name(deployment)
    )
    if not current:
        model = deployment.spec.model
        return Missing(Reason.NO_DATA, f"no predictions of {model} {version} in the window")
    baseline = _baseline(deployment, inputs, version)
    if isinstance(baseline, Missing):
        return baseline
    return evaluate_segments(_counts_by_segment(current), baseline, criteria(deployment))


def false_episode_days(deployment: ModelDeployment) -> float:
    """Expected days between false Drifted episodes at this spec (see drift.calibration)."""
    drift = deployment.spec.drift
    return mean_days_between_false_episodes(
        drift.significance,
        duration_seconds(drift.window),
        duration_seconds(drift.interval),
        drift.consecutive_breaches,
    )


def _inconclusive_report(
    deployment: ModelDeployment, reason: str, now: datetime
) -> DriftCheckReport:
    drift = deployment.spec.drift
    return DriftCheckReport(
        outcome=DriftVerdict.INCONCLUSIVE,
        reason=reason,
        statistic=drift.statistic.value,
        window=drift.window,
        baseline=drift.baseline.kind.value,
        version=champion_version(deployment.spec, deployment.status),
        false_episode_days=false_episode_days(deployment),
        checked_at=now,
    )


def _status_report(
    deployment: ModelDeployment, result: StatisticsReport, now: datetime
) -> DriftCheckReport:
    """The status view of a statistics report: the headline is the most significant segment."""
    drift = deployment.spec.drift
    tested = [s for s in result.segments if s.p_value is not None]
    headline = (
        min(tested, key=lambda s: s.adjusted_p_value or 1.0) if tested else result.segments[0]
    )
    segments = [
        SegmentReport(
            segment=s.segment,
            outcome=s.verdict,
            score=s.score,
            p_value=s.p_value,
            adjusted_p_value=s.adjusted_p_value,
            effect=s.effect.estimate if s.effect is not None else None,
            effect_lower=s.effect.lower if s.effect is not None else None,
            current_samples=s.n,
        )
        for s in result.segments
        if s.segment
    ]
    return DriftCheckReport(
        outcome=result.verdict,
        reason=result.reason,
        statistic=drift.statistic.value,
        score=headline.score,
        threshold=headline.threshold,
        p_value=headline.p_value,
        noise_floor=headline.noise_floor,
        effect=(
            EffectReport.model_validate(headline.effect.model_dump())
            if headline.effect is not None
            else None
        ),
        false_episode_days=false_episode_days(deployment),
        current_samples=sum(s.n for s in result.segments),
        baseline_samples=headline.m,
        window=drift.window,
        baseline=drift.baseline.kind.value,
        version=champion_version(deployment.spec, deployment.status),
        labels=[
            LabelProportion(label=share.label, baseline=share.baseline, current=share.current)
            for share in headline.labels
        ],
        segments=segments,
        checked_at=now,
    )


def run_check(deployment: ModelDeployment, inputs: DriftInputs) -> DriftCheck:
    evaluated = evaluate(deployment, inputs)
    if isinstance(evaluated, Missing):
        report = _inconclusive_report(deployment, evaluated.message, inputs.tick)
        monitoring = evaluated.reason
    else:
        report = _status_report(deployment, evaluated, inputs.tick)
        # The statistics say Inconclusive only for too few predictions (or labels) to test.
        inconclusive = report.outcome is DriftVerdict.INCONCLUSIVE
        monitoring = Reason.TOO_FEW_SAMPLES if inconclusive else Reason.METRICS_OK
    policy = HysteresisPolicy(
        breaches_to_drift=deployment.spec.drift.consecutive_breaches,
        clean_checks_to_recover=deployment.spec.drift.consecutive_breaches,
    )
    previous = deployment.status.drift_tracking
    tracking = next_state(previous, report.outcome, policy)
    since = previous.drifted_since
    if tracking.drifted and not previous.drifted:
        since = inputs.tick
    elif not tracking.drifted:
        since = None
    began = drift_began_at(previous, tracking, inputs.tick, deployment.spec.drift.window)
    tracking = tracking.model_copy(
        update={"last_check_at": inputs.tick, "drifted_since": since, "drift_began_at": began}
    )
    return DriftCheck(report=report, tracking=tracking, monitoring=monitoring)


def drift_began_at(
    previous: DriftTracking, tracking: DriftTracking, tick: datetime, window: str
) -> datetime | None:
    """Where the drifted data began: the start of the window of the first breaching check of
    the streak that is under way (or raised Drifted), kept while the episode lasts. Pure.

    Not when Drifted became True: by then K checks have breached, and the data of the first
    of them is drifted data too; nor earlier than that window, which did not breach before."""
    if tracking.drifted and previous.drifted and previous.drift_began_at is not None:
        return previous.drift_began_at
    if tracking.breach_streak == 0:
        return previous.drift_began_at if tracking.drifted else None
    if previous.breach_streak > 0 and previous.drift_began_at is not None:
        return previous.drift_began_at
    return tick - timedelta(seconds=duration_seconds(window))


def score_summary(report: DriftCheckReport) -> str:
    """The printer column: the score against what it must exceed."""
    if report.outcome is DriftVerdict.INCONCLUSIVE or report.score is None:
        return "inconclusive"
    if report.p_value is not None and report.statistic == "chiSquare":
        return f"p={report.p_value:.3g}"
    return f"{report.score:.3g}/{report.threshold or 0:.3g}"


AWAITING_DATA = frozenset({Reason.NO_DATA, Reason.TOO_FEW_SAMPLES})
"""Why a check cannot decide yet although monitoring works: a new model has served no (or
too few) predictions. The first check of every new ModelDeployment finds this."""


def check_events(status: ModelDeploymentStatus, check: DriftCheck) -> list[Event]:
    """The Events of a check: Drifted flipping, and monitoring lost or regained.

    One Event per meaningful transition: the MonitoringAvailable condition flipping. The
    first check has nothing to flip from, so it posts an Event only for a failure a person
    must fix (Prometheus unreachable or refusing us, a missing Secret, no Prometheus at all).
    Monitoring that works from the start, and no predictions yet, are how a new model
    begins: at 1,000 new resources they were 1,000 Events that said nothing new."""
    report, tracking = check.report, check.tracking
    events: list[Event] = []
    if tracking.drifted != status.drift_tracking.drifted:
        events.append(
            Event("Warning", EventReason.DRIFT_DETECTED, f"Drifted: {report.reason}")
            if tracking.drifted
            else Event("Normal", EventReason.DRIFT_RECOVERED, f"no longer drifted: {report.reason}")
        )
    available = check.monitoring is Reason.METRICS_OK
    previous = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
    if previous is None:
        if not available and check.monitoring not in AWAITING_DATA:
            events.append(_monitoring_lost(check))
    elif (previous.status == "True") != available:
        events.append(
            Event("Normal", EventReason.MONITORING_AVAILABLE, report.reason)
            if available
            else _monitoring_lost(check)
        )
    return events


def _monitoring_lost(check: DriftCheck) -> Event:
    reason = check.report.reason
    return Event("Warning", check.monitoring.value, f"drift check inconclusive: {reason}")


def record_check(status: ModelDeploymentStatus, check: DriftCheck) -> ModelDeploymentStatus:
    """The check's report and hysteresis in status (its conditions are the summary's)."""
    return status.model_copy(
        update={
            "drift": check.report,
            "drift_tracking": check.tracking,
            "drift_score": score_summary(check.report),
        }
    )


def apply_check(
    deployment: ModelDeployment, status: ModelDeploymentStatus, check: DriftCheck, now: datetime
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """One check alone written into status: report, tracking, Drifted and MonitoringAvailable."""
    events = check_events(status, check)
    conditions = drift_conditions(deployment, status.conditions, check, None, now)
    return record_check(status, check).model_copy(update={"conditions": conditions}), events
