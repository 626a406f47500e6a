"""One drift check of one resource: picking its series from the shared results, the
statistics, hysteresis, conditions, Events, and failing safe on missing data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fixtures.decision_inputs import T0, baseline_ratio, deployment, predictions
from rollforward.api import ConditionType, DriftVerdict, ModelDeploymentStatus, duration_seconds
from rollforward.conditions import find_condition
from rollforward.drift.check import (
    DriftInputs,
    apply_check,
    check_is_due,
    check_tick,
    drift_queries,
    run_check,
)
from rollforward.events import Event
from rollforward.measurements import QueryResult, Sample

BASELINE = baseline_ratio("upsell:v1", {"upgrade": 0.3, "stay": 0.7})


def current(upgrade: float, stay: float, **labels: str) -> QueryResult:
    result = predictions("champion", "upsell:v1", {"upgrade": upgrade, "stay": stay})
    if not labels:
        return result
    return QueryResult(
        samples=tuple(Sample({**s.labels, **labels}, s.value) for s in result.samples)
    )


def check(
    inputs_current: QueryResult, status: ModelDeploymentStatus | None = None, **kw: Any
) -> Any:
    md = deployment(status or ModelDeploymentStatus())
    inputs = DriftInputs(tick=T0, current=inputs_current, baseline=kw.get("baseline", BASELINE))
    result = run_check(md, inputs)
    return md, result


def test_queries_do_not_depend_on_the_resource() -> None:
    a = drift_queries(deployment())
    b = drift_queries(deployment(mutate=lambda spec: spec.update(model="other")))
    assert a == b
    assert "sum by (namespace, model, version, variant, label, segment)" in a.current
    assert "[300s]" in a.current
    assert a.baseline is not None and "rollforward_baseline_ratio" in a.baseline


def test_seasonal_baseline_uses_offset() -> None:
    def seasonal(spec: dict[str, Any]) -> None:
        spec["drift"]["baseline"] = {"kind": "seasonal", "offset": "7d"}

    queries = drift_queries(deployment(mutate=seasonal))
    assert queries.baseline is not None and "offset 604800s" in queries.baseline


def test_checks_align_to_the_interval_and_run_once_per_tick() -> None:
    md = deployment()
    assert check_tick(md, T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=5)
    assert check_is_due(md, T0)
    ran = md.model_copy(
        update={
            "status": md.status.model_copy(
                update={
                    "drift_tracking": md.status.drift_tracking.model_copy(
                        update={"last_check_at": T0}
                    )
                }
            )
        }
    )
    assert not check_is_due(ran, T0 + timedelta(minutes=4))
    assert check_is_due(ran, T0 + timedelta(minutes=5))


def test_same_distribution_is_no_drift() -> None:
    _, result = check(current(300, 700))
    assert result.report.outcome is DriftVerdict.NO_DRIFT
    assert result.report.current_samples == 1000
    assert {p.label for p in result.report.labels} == {"upgrade", "stay"}


def test_shifted_distribution_breaches_and_k_breaches_set_drifted_with_an_event() -> None:
    md, first = check(current(150, 850))
    assert first.report.outcome is DriftVerdict.DRIFT
    assert not first.tracking.drifted
    status = md.status
    breaches = md.spec.drift.consecutive_breaches
    for k in range(1, breaches + 1):
        md = md.model_copy(update={"status": status})
        result = run_check(md, DriftInputs(tick=T0, current=current(150, 850), baseline=BASELINE))
        status, events = apply_check(md, status, result, T0)
        assert status.drift_tracking.drifted is (k == breaches)
    drifted = find_condition(status.conditions, ConditionType.DRIFTED)
    assert drifted is not None and drifted.status == "True" and drifted.reason == "DriftDetected"
    assert status.drift_tracking.drifted_since == T0
    assert status.drift_score.startswith("p=")
    assert any(e.reason == "DriftDetected" for e in events)


def test_other_resources_series_are_ignored() -> None:
    _, result = check(current(150, 850, namespace="elsewhere"))
    assert result.report.outcome is DriftVerdict.INCONCLUSIVE
    assert "no predictions" in result.report.reason


def test_failed_query_is_inconclusive_and_says_monitoring_is_unavailable() -> None:
    md = deployment(ModelDeploymentStatus())
    failed = DriftInputs(
        tick=T0, current=QueryResult(error="ConnectionError: refused"), baseline=None
    )
    result = run_check(md, failed)
    assert result.report.outcome is DriftVerdict.INCONCLUSIVE
    status, events = apply_check(md, md.status, result, T0)
    monitoring = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
    assert monitoring is not None and monitoring.status == "False"
    assert monitoring.reason == "PrometheusUnreachable"
    assert any(e.type == "Warning" for e in events)
    drifted = find_condition(status.conditions, ConditionType.DRIFTED)
    assert drifted is not None and drifted.status == "False"


def test_inconclusive_keeps_an_existing_drift_decision() -> None:
    md = deployment(ModelDeploymentStatus())
    status = md.status.model_copy(
        update={
            "drift_tracking": md.status.drift_tracking.model_copy(
                update={"drifted": True, "breach_streak": 3}
            )
        }
    )
    md = md.model_copy(update={"status": status})
    result = run_check(md, DriftInputs(tick=T0, current=QueryResult(samples=()), baseline=BASELINE))
    assert result.tracking.drifted
    assert result.tracking.breach_streak == 3


def test_too_few_samples_is_inconclusive() -> None:
    _, result = check(current(5, 20))
    assert result.report.outcome is DriftVerdict.INCONCLUSIVE


def test_missing_baseline_gauge_is_inconclusive() -> None:
    _, result = check(current(300, 700), baseline=QueryResult(samples=()))
    assert result.report.outcome is DriftVerdict.INCONCLUSIVE
    assert "baseline" in result.report.reason


def test_status_reports_the_effect_and_the_false_episode_time() -> None:
    _, result = check(current(150, 850))
    effect = result.report.effect
    assert effect is not None
    assert effect.estimate == pytest.approx(0.15)
    assert effect.minimum == 0.03 and effect.lower >= effect.minimum
    assert effect.confidence == pytest.approx(0.99)
    # The example's cadence: 5m windows every 5m (independent checks), 2 breaches, 0.01:
    # 0.99 x 0.01^2 per check, one check every 5 minutes.
    assert result.report.false_episode_days == pytest.approx(300 / 0.99e-4 / 86_400, rel=0.01)


def test_a_significant_shift_below_min_effect_is_no_drift_in_status() -> None:
    md = deployment(mutate=lambda spec: spec["drift"].update(minEffect=0.05))
    inputs = DriftInputs(tick=T0, current=current(3_400, 6_600), baseline=BASELINE)
    result = run_check(md, inputs)
    assert result.report.outcome is DriftVerdict.NO_DRIFT
    assert result.report.p_value is not None and result.report.p_value < 0.01
    assert "too small to matter" in result.report.reason


def test_the_drift_onset_is_the_window_start_of_the_first_breach_and_lasts_the_episode() -> None:
    """The first breaching check's window is where the drifted data began; later breaches,
    Drifted itself and a clean check inside the episode keep it; a clean check outside an
    episode forgets it, and a promotion's fresh start too."""
    md = deployment(ModelDeploymentStatus())
    window = timedelta(seconds=duration_seconds(md.spec.drift.window))
    status = md.status
    shifted, same = current(150, 850), current(300, 700)
    ticks = [T0 + timedelta(minutes=5 * i) for i in range(6)]
    verdicts = [same, shifted, shifted, same, shifted, same]
    began = []
    for tick, counts in zip(ticks, verdicts, strict=True):
        md = md.model_copy(update={"status": status})
        result = run_check(md, DriftInputs(tick=tick, current=counts, baseline=BASELINE))
        status, _ = apply_check(md, status, result, tick)
        began.append((status.drift_tracking.drifted, status.drift_tracking.drift_began_at))
    onset = ticks[1] - window
    assert md.spec.drift.consecutive_breaches == 2
    assert began == [
        (False, None),  # clean: no onset
        (False, onset),  # the first breach: its window's start
        (True, onset),  # Drifted: still the first breach's window, not this one's
        (True, onset),  # a clean check inside the episode keeps it
        (True, onset),
        (True, onset),
    ]


def test_a_breach_streak_that_ends_before_drifted_forgets_its_onset() -> None:
    md = deployment(ModelDeploymentStatus())
    status = md.status
    for tick, counts in [(T0, current(150, 850)), (T0 + timedelta(minutes=5), current(300, 700))]:
        md = md.model_copy(update={"status": status})
        result = run_check(md, DriftInputs(tick=tick, current=counts, baseline=BASELINE))
        status, _ = apply_check(md, status, result, tick)
    assert not status.drift_tracking.drifted and status.drift_tracking.drift_began_at is None


class TestMonitoringEvents:
    """One Event per meaningful transition: MonitoringAvailable flipping, and on the first
    check only a failure a person must fix."""

    def first_check(
        self, inputs_current: QueryResult, baseline: QueryResult | None = BASELINE
    ) -> tuple[Any, ModelDeploymentStatus, list[Event]]:
        md = deployment(ModelDeploymentStatus())
        result = run_check(md, DriftInputs(tick=T0, current=inputs_current, baseline=baseline))
        status, events = apply_check(md, md.status, result, T0)
        return md, status, events

    def then(
        self, md: Any, status: ModelDeploymentStatus, inputs_current: QueryResult
    ) -> tuple[ModelDeploymentStatus, list[Event]]:
        md = md.model_copy(update={"status": status})
        later = T0 + timedelta(minutes=5)
        result = run_check(md, DriftInputs(tick=later, current=inputs_current, baseline=BASELINE))
        return apply_check(md, status, result, later)

    def reasons(self, events: list[Event]) -> list[str]:
        return [e.reason for e in events]

    def test_no_predictions_yet_at_the_first_check_posts_no_event(self) -> None:
        _, status, events = self.first_check(QueryResult(samples=()))
        monitoring = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
        assert monitoring is not None and (monitoring.status, monitoring.reason) == (
            "False",
            "NoData",
        )
        assert events == []

    def test_too_few_predictions_at_the_first_check_posts_no_event(self) -> None:
        _, status, events = self.first_check(current(3, 7))
        monitoring = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
        assert monitoring is not None and monitoring.reason == "TooFewSamples"
        assert events == []

    def test_working_monitoring_at_the_first_check_posts_no_event(self) -> None:
        _, status, events = self.first_check(current(300, 700))
        monitoring = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
        assert monitoring is not None and monitoring.status == "True"
        assert events == []

    def test_a_failure_a_person_must_fix_warns_at_the_first_check(self) -> None:
        _, _, events = self.first_check(QueryResult(error="ConnectionError: refused"))
        assert [(e.type, e.reason) for e in events] == [("Warning", "PrometheusUnreachable")]

    def test_data_arriving_after_the_first_check_is_a_transition(self) -> None:
        md, status, _ = self.first_check(QueryResult(samples=()))
        status, events = self.then(md, status, current(300, 700))
        assert self.reasons(events) == ["MonitoringAvailable"]

    def test_losing_data_after_a_working_check_warns(self) -> None:
        md, status, _ = self.first_check(current(300, 700))
        status, events = self.then(md, status, QueryResult(samples=()))
        assert [(e.type, e.reason) for e in events] == [("Warning", "NoData")]

    def test_no_flip_no_event(self) -> None:
        md, status, _ = self.first_check(QueryResult(samples=()))
        _, events = self.then(md, status, QueryResult(samples=()))
        assert events == []
