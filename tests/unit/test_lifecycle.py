"""The roll-forward state machine, transition by transition (pure: no cluster, no clock)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from fixtures.decision_inputs import (
    T0,
    analysis_inputs,
    deployment,
    finished_job,
    job_pod,
    per_variant,
    result,
)
from rollforward.analysis import AnalysisInputs
from rollforward.api import (
    ConditionType,
    DriftTracking,
    HistoryEntry,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    RetrainingStatus,
    RolloutStatus,
)
from rollforward.api import annotations as requests
from rollforward.conditions import find_condition
from rollforward.lifecycle import (
    LifecycleInputs,
    LifecycleResult,
    advance,
    analysis_due,
    rollout_hash,
)
from rollforward.naming import ANNOTATION_VERSION, job_name
from rollforward.observed import DeploymentHealth
from rollforward.retraining import trigger_id
from rollforward.variants import served_variants

DRIFTED = DriftTracking(drifted=True, breach_streak=3, checks=5, drifted_since=T0)
READY = DeploymentHealth(True, 1, True, "1/1 ready", serving=True)


def step(
    md: ModelDeployment, inputs: LifecycleInputs | None = None, at: timedelta = timedelta(0)
) -> LifecycleResult:
    return advance(md, inputs or LifecycleInputs(), T0 + at)


def then(md: ModelDeployment, outcome: LifecycleResult, **changes: Any) -> ModelDeployment:
    return md.model_copy(update={"status": outcome.status, **changes})


def drifted() -> ModelDeployment:
    return deployment(ModelDeploymentStatus(drift_tracking=DRIFTED))


def in_canary(md: ModelDeployment, step_index: int = 0, **rollout: Any) -> ModelDeployment:
    status = md.status.model_copy(
        update={
            "rollout": RolloutStatus(
                candidate_version="upsell:v2",
                trigger_id="t1",
                step=step_index,
                step_started_at=T0,
                spec_hash=rollout_hash(md),
                **{"candidate_ready": True, **rollout},
            )
        }
    )
    return md.model_copy(update={"status": status})


class TestTriggers:
    def test_drift_starts_exactly_one_job_with_a_deterministic_name(self) -> None:
        first = step(drifted())
        assert len(first.jobs) == 1
        job = first.jobs[0]
        expected = job_name("upsell", trigger_id(f"drift:{T0.isoformat()}"), 1)
        assert job["metadata"]["name"] == expected
        assert first.status.retraining is not None
        assert first.status.retraining.phase is JobPhase.RUNNING
        assert first.status.phase is Phase.RETRAINING
        condition = find_condition(first.status.conditions, ConditionType.RETRAINING)
        assert condition is not None and condition.status == "True"

        # The same status again (the Job not listed yet): the same Job, never a second one.
        again = step(then(drifted(), first), at=timedelta(seconds=5))
        assert [j["metadata"]["name"] for j in again.jobs] == [expected]
        assert again.status.retraining == first.status.retraining

    def test_job_env_and_template_come_from_spec(self) -> None:
        job = step(drifted()).jobs[0]
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["ROLLFORWARD_MODEL"] == "upsell"
        assert env["ROLLFORWARD_VERSION"] == "upsell:v1"
        assert pod["containers"][0]["command"][:3] == ["python", "-m", "upsell.retrain"]
        assert job["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
        assert job["spec"]["backoffLimit"] == 0

    def test_no_trigger_without_drift(self) -> None:
        outcome = step(deployment())
        assert outcome.jobs == [] and outcome.status.retraining is None
        assert outcome.status.phase is Phase.STABLE

    def test_manual_request_runs_once(self) -> None:
        md = deployment(annotations={requests.RETRAIN: "2026-11-27T12:00:00Z"})
        first = step(md)
        assert len(first.jobs) == 1
        assert first.status.retraining is not None
        assert first.status.retraining.trigger == "manual"
        finished = first.status.model_copy(
            update={
                "retraining": first.status.retraining.model_copy(update={"phase": JobPhase.FAILED})
            }
        )
        again = step(then(md, first, status=finished), at=timedelta(hours=2))
        assert again.jobs == []

    def test_cooldown_limits_a_trigger(self) -> None:
        md = deployment(
            ModelDeploymentStatus(
                drift_tracking=DRIFTED, retrain_starts=[T0 - timedelta(minutes=10)]
            )
        )
        outcome = step(md)
        assert outcome.jobs == []
        condition = find_condition(outcome.status.conditions, ConditionType.RETRAINING)
        assert condition is not None and condition.reason == "RetrainLimited"
        assert "cooldown" in condition.message
        assert outcome.status.phase is Phase.DRIFTED
        later = step(md, at=timedelta(hours=1))
        assert len(later.jobs) == 1

    def test_daily_maximum_limits_a_trigger(self) -> None:
        starts = [T0 - timedelta(hours=h) for h in (2, 4, 6)]
        md = deployment(ModelDeploymentStatus(drift_tracking=DRIFTED, retrain_starts=starts))
        outcome = step(md)
        assert outcome.jobs == []
        assert outcome.status.retraining is not None
        assert "maxPerDay" in outcome.status.retraining.message

    def test_schedule_fires_once_per_slot(self) -> None:
        def scheduled(spec: dict[str, Any]) -> None:
            spec["retraining"]["trigger"] = "schedule"
            spec["retraining"]["schedule"] = "0 3 * * *"

        md = deployment(mutate=scheduled)
        first = step(md, at=timedelta(hours=16))  # 04:00 the next day: the 03:00 slot fired
        assert len(first.jobs) == 1
        assert first.status.retraining is not None
        assert first.status.retraining.trigger == "schedule"

    def test_paused_starts_nothing(self) -> None:
        md = deployment(
            ModelDeploymentStatus(drift_tracking=DRIFTED), annotations={requests.PAUSED: "true"}
        )
        assert step(md).jobs == []


def running(md: ModelDeployment) -> tuple[ModelDeployment, str]:
    first = step(md)
    assert first.status.retraining is not None
    return then(md, first), first.status.retraining.job_name


class TestRetrainingResult:
    def test_accepted_candidate_starts_the_canary(self) -> None:
        md, name = running(drifted())
        inputs = LifecycleInputs(
            jobs={name: finished_job(name)},
            job_pods={name: job_pod(result().to_termination_message())},
        )
        outcome = step(md, inputs, at=timedelta(minutes=3))
        assert outcome.status.rollout is not None
        assert outcome.status.rollout.candidate_version == "upsell:v2"
        assert outcome.status.rollout.step == 0
        assert outcome.status.phase is Phase.CANARY
        assert outcome.status.history[-1].outcome == "Canary"
        assert outcome.status.history[-1].metrics["holdoutAuc"] == 0.82
        assert {e.reason for e in outcome.events} >= {"CandidateAccepted"}

    def test_candidate_below_the_gate_is_rejected_and_never_deployed(self) -> None:
        md, name = running(drifted())
        bad = result(holdout_auc=0.6).to_termination_message()
        inputs = LifecycleInputs(jobs={name: finished_job(name)}, job_pods={name: job_pod(bad)})
        outcome = step(md, inputs, at=timedelta(minutes=3))
        assert outcome.status.rollout is None
        assert outcome.status.retraining is not None
        assert outcome.status.retraining.phase is JobPhase.REJECTED
        assert "minAuc" in outcome.status.retraining.message
        assert "upsell:v2" in outcome.status.failed_versions
        assert outcome.status.history[-1].outcome == "Rejected"

    def test_candidate_worse_than_the_champion_on_recent_data_is_rejected(self) -> None:
        md, name = running(drifted())
        worse = result(recent_auc=0.70, champion_recent_auc=0.78).to_termination_message()
        inputs = LifecycleInputs(jobs={name: finished_job(name)}, job_pods={name: job_pod(worse)})
        outcome = step(md, inputs, at=timedelta(minutes=3))
        assert outcome.status.rollout is None
        assert outcome.status.retraining is not None
        assert "worse than the champion" in outcome.status.retraining.message

    def test_a_version_that_failed_before_is_never_retried(self) -> None:
        md, name = running(drifted())
        md = md.model_copy(
            update={"status": md.status.model_copy(update={"failed_versions": ["upsell:v2"]})}
        )
        inputs = LifecycleInputs(
            jobs={name: finished_job(name)},
            job_pods={name: job_pod(result().to_termination_message())},
        )
        outcome = step(md, inputs, at=timedelta(minutes=3))
        assert outcome.status.rollout is None

    def test_malformed_result_fails_the_attempt_and_retries_with_backoff(self) -> None:
        md, name = running(drifted())
        inputs = LifecycleInputs(jobs={name: finished_job(name)}, job_pods={name: job_pod("{oops")})
        failed = step(md, inputs, at=timedelta(minutes=3))
        retraining = failed.status.retraining
        assert retraining is not None and retraining.phase is JobPhase.FAILED
        assert "malformed" in retraining.message
        assert retraining.next_attempt_at == T0 + timedelta(minutes=3, seconds=30)
        assert failed.status.rollout is None
        condition = find_condition(failed.status.conditions, ConditionType.RETRAINING)
        assert condition is not None and condition.reason == "JobFailed"

        too_soon = step(then(md, failed), inputs, at=timedelta(minutes=3, seconds=10))
        assert too_soon.jobs == []
        retry = step(then(md, failed), inputs, at=timedelta(minutes=4))
        assert retry.status.retraining is not None
        assert retry.status.retraining.attempt == 2
        assert retry.jobs[0]["metadata"]["name"].endswith("-2")

    def test_last_attempt_failing_gives_up_with_history(self) -> None:
        md, _ = running(drifted())
        assert md.status.retraining is not None
        last = md.status.retraining.model_copy(update={"attempt": 2, "job_name": "j2"})
        md = md.model_copy(update={"status": md.status.model_copy(update={"retraining": last})})
        inputs = LifecycleInputs(jobs={"j2": finished_job("j2", succeeded=False)})
        outcome = step(md, inputs, at=timedelta(minutes=3))
        assert outcome.status.retraining is not None
        assert outcome.status.retraining.next_attempt_at is None
        assert outcome.status.history[-1].outcome == "Failed"
        assert outcome.status.rollout is None

    def test_timed_out_job_is_deleted_and_counts_as_failed(self) -> None:
        md, name = running(drifted())
        inputs = LifecycleInputs(jobs={name: {"metadata": {"name": name}, "status": {"active": 1}}})
        outcome = step(md, inputs, at=timedelta(minutes=31))
        assert outcome.delete_jobs == [name]
        assert outcome.status.retraining is not None
        assert "timed out" in outcome.status.retraining.message


class TestCandidateStart:
    def test_no_traffic_and_no_clock_until_the_candidate_serves(self) -> None:
        md = in_canary(deployment(), candidate_ready=False)
        starting = DeploymentHealth(False, 0, False, "0/1 ready")
        assert not analysis_due(md, T0 + timedelta(minutes=5))
        waiting = step(md, LifecycleInputs(candidate=starting), timedelta(minutes=2))
        assert waiting.status.rollout is not None
        assert not waiting.status.rollout.candidate_ready
        assert served_variants(md.spec, waiting.status)[-1].weight == 0

        ready = step(then(md, waiting), LifecycleInputs(candidate=READY), timedelta(minutes=3))
        rollout = ready.status.rollout
        assert rollout is not None and rollout.candidate_ready
        assert rollout.step_started_at == T0 + timedelta(minutes=3)
        assert rollout.serving_since == T0 + timedelta(minutes=3)
        assert served_variants(md.spec, ready.status)[-1].weight == 10
        assert any(e.reason == "CandidateReady" for e in ready.events)

    def test_candidate_that_never_serves_is_rolled_back_after_the_deadline(self) -> None:
        md = in_canary(deployment(), candidate_ready=False)
        stuck = DeploymentHealth(False, 0, True, "0/1 ready; Deployment says: crash loop")
        assert step(md, LifecycleInputs(candidate=stuck), timedelta(minutes=9)).status.rollout
        outcome = step(md, LifecycleInputs(candidate=stuck), timedelta(minutes=11))
        assert outcome.status.rollout is None
        assert "did not become available" in outcome.status.last_rollback


class TestCanary:
    def test_a_running_step_is_measured_at_every_look(self) -> None:
        md = in_canary(deployment())
        assert analysis_due(md, T0 + timedelta(seconds=30))
        assert analysis_due(md, T0 + timedelta(minutes=1))
        assert not analysis_due(in_canary(deployment(), promoting=True), T0)

    def test_successful_step_moves_to_the_next_weight(self) -> None:
        md = in_canary(deployment())
        outcome = step(
            md, LifecycleInputs(candidate=READY, analysis=analysis_inputs()), timedelta(minutes=1)
        )
        assert outcome.status.rollout is not None
        assert outcome.status.rollout.step == 1
        assert {r.outcome for r in outcome.status.rollout.analysis} == {"Successful"}

    def test_last_step_promotes_automatically(self) -> None:
        md = in_canary(deployment(), step_index=1)
        outcome = step(
            md, LifecycleInputs(candidate=READY, analysis=analysis_inputs()), timedelta(minutes=1)
        )
        assert outcome.status.rollout is not None and outcome.status.rollout.promoting
        assert outcome.status.phase is Phase.PROMOTING

    def test_manual_approval_waits_for_the_annotation(self) -> None:
        def manual(spec: dict[str, Any]) -> None:
            spec["rollout"]["approval"] = "Manual"

        md = in_canary(deployment(mutate=manual), step_index=1)
        waiting = step(
            md, LifecycleInputs(candidate=READY, analysis=analysis_inputs()), timedelta(minutes=1)
        )
        assert waiting.status.rollout is not None and waiting.status.rollout.awaiting_approval
        assert waiting.status.phase is Phase.AWAITING_APPROVAL
        still = step(then(md, waiting), at=timedelta(hours=5))
        assert still.status.rollout is not None and not still.status.rollout.promoting

        approved = then(
            md,
            waiting,
            metadata=md.metadata.model_copy(update={"annotations": {requests.APPROVE: "x"}}),
        )
        outcome = step(approved, at=timedelta(hours=5))
        assert outcome.status.rollout is not None and outcome.status.rollout.promoting
        assert "approve=x" in outcome.status.handled_requests

    def test_promotion_finishes_when_the_champion_runs_the_candidate(self) -> None:
        md = in_canary(deployment(), step_index=1, promoting=True)
        not_yet = step(md, LifecycleInputs(champion_deployment=None))
        assert not_yet.status.rollout is not None
        champion = {
            "metadata": {"generation": 2, "annotations": {ANNOTATION_VERSION: "upsell:v2"}},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
        }
        done = step(md, LifecycleInputs(champion_deployment=champion), timedelta(minutes=2))
        assert done.status.rollout is None
        assert done.status.champion == "upsell:v2"
        assert done.status.promoted_at == T0 + timedelta(minutes=2)
        assert not done.status.drift_tracking.drifted
        assert done.status.phase is Phase.STABLE
        assert {e.reason for e in done.events} >= {"Promoted"}

    def test_raised_error_rate_rolls_back(self) -> None:
        md = in_canary(deployment())
        inputs = LifecycleInputs(candidate=READY, analysis=analysis_inputs(candidate_errors=40))
        outcome = step(md, inputs, timedelta(minutes=1))
        assert outcome.status.rollout is None
        assert "upsell:v2" in outcome.status.failed_versions
        assert outcome.status.phase is Phase.ROLLED_BACK
        assert "errorRate" in outcome.status.last_rollback
        assert any(e.reason == "RolledBack" and e.type == "Warning" for e in outcome.events)

    def test_a_bucket_of_latency_difference_is_not_slow(self) -> None:
        md = in_canary(deployment())
        inputs = LifecycleInputs(
            candidate=READY, analysis=analysis_inputs(candidate_p99=0.05, champion_p99=0.025)
        )
        rollout = step(md, inputs, timedelta(minutes=1)).status.rollout
        assert rollout is not None and rollout.step == 1

    def test_slow_candidate_rolls_back(self) -> None:
        md = in_canary(deployment())
        inputs = LifecycleInputs(candidate=READY, analysis=analysis_inputs(candidate_p99=0.5))
        assert step(md, inputs, timedelta(minutes=1)).status.rollout is None

    def test_candidate_predictions_far_from_its_baseline_roll_back(self) -> None:
        md = in_canary(deployment())
        skewed = analysis_inputs(candidate_counts={"upgrade": 300, "stay": 100})
        assert (
            step(
                md, LifecycleInputs(candidate=READY, analysis=skewed), timedelta(minutes=1)
            ).status.rollout
            is None
        )

    def test_small_but_significant_prediction_shift_does_not_fail_the_step(self) -> None:
        # 22% against a 20% baseline on 5,000 predictions: chi-square p < 0.001, PSI 0.0025.
        md = in_canary(deployment())
        slight = analysis_inputs(requests=5000, candidate_counts={"upgrade": 1100, "stay": 3900})
        outcome = step(md, LifecycleInputs(candidate=READY, analysis=slight), timedelta(minutes=1))
        rollout = outcome.status.rollout
        assert rollout is not None and rollout.step == 1
        drift = next(r for r in rollout.analysis if r.name == "predictionDrift")
        assert drift.outcome == "Successful"

    def test_prometheus_down_holds_and_never_rolls_back(self) -> None:
        md = in_canary(deployment())
        down = analysis_inputs(error="ConnectionError: refused")
        outcome = step(md, LifecycleInputs(candidate=READY, analysis=down), timedelta(minutes=1))
        rollout = outcome.status.rollout
        assert rollout is not None and rollout.step == 0
        assert rollout.inconclusive_count == 1
        assert rollout.step_started_at == T0 + timedelta(minutes=1)
        assert outcome.status.failed_versions == []

    def test_too_few_requests_is_inconclusive_not_failed(self) -> None:
        md = in_canary(deployment())
        quiet = analysis_inputs(requests=10, candidate_errors=5)
        rollout = step(
            md, LifecycleInputs(candidate=READY, analysis=quiet), timedelta(minutes=1)
        ).status.rollout
        assert rollout is not None and rollout.inconclusive_count == 1

    def test_inconclusive_limit_pauses_for_a_person(self) -> None:
        md = in_canary(deployment(), inconclusive_count=9)
        down = analysis_inputs(error="down")
        outcome = step(md, LifecycleInputs(candidate=READY, analysis=down), timedelta(minutes=1))
        assert outcome.status.rollout is not None and outcome.status.rollout.held_reason
        assert outcome.status.phase is Phase.PAUSED

    def test_on_inconclusive_rollback_rolls_back(self) -> None:
        def strict(spec: dict[str, Any]) -> None:
            spec["rollout"]["onInconclusive"] = "rollback"

        md = in_canary(deployment(mutate=strict))
        down = analysis_inputs(error="down")
        assert (
            step(
                md, LifecycleInputs(candidate=READY, analysis=down), timedelta(minutes=1)
            ).status.rollout
            is None
        )

    def test_spec_change_mid_analysis_restarts_the_analysis(self) -> None:
        md = in_canary(deployment(), step_index=1, inconclusive_count=2)

        def longer(spec: dict[str, Any]) -> None:
            spec["rollout"]["steps"][1]["pause"] = "5m"

        changed = deployment(mutate=longer).model_copy(update={"status": md.status})
        outcome = step(
            changed,
            LifecycleInputs(candidate=READY, analysis=analysis_inputs()),
            timedelta(minutes=3),
        )
        rollout = outcome.status.rollout
        assert rollout is not None
        assert rollout.step == 0 and rollout.analysis == [] and rollout.inconclusive_count == 0
        assert rollout.spec_hash == rollout_hash(changed)

    def test_rollback_request_aborts_the_canary_once(self) -> None:
        md = in_canary(deployment(annotations={requests.ROLLBACK: "now"}))
        outcome = step(md)
        assert outcome.status.rollout is None
        assert "rollback=now" in outcome.status.handled_requests

    def test_paused_canary_makes_no_step(self) -> None:
        md = in_canary(deployment(annotations={requests.PAUSED: "true"}))
        outcome = step(
            md, LifecycleInputs(candidate=READY, analysis=analysis_inputs()), timedelta(minutes=1)
        )
        assert outcome.status.rollout is not None and outcome.status.rollout.step == 0
        assert outcome.status.phase is Phase.PAUSED

    def test_unavailable_candidate_fails_its_step(self) -> None:
        md = in_canary(deployment())
        stuck = DeploymentHealth(False, 0, True, "0/1 ready")
        assert (
            step(
                md,
                LifecycleInputs(candidate=stuck, analysis=analysis_inputs()),
                timedelta(minutes=1),
            ).status.rollout
            is None
        )


def test_initial_champion_opens_the_history() -> None:
    outcome = step(deployment())
    assert [(h.version, h.trigger, h.outcome) for h in outcome.status.history] == [
        ("upsell:v1", "initial", "Serving")
    ]


def test_a_retraining_status_round_trips_through_json() -> None:
    status = step(drifted()).status
    assert (
        ModelDeploymentStatus.model_validate(status.model_dump(by_alias=True, mode="json"))
        == status
    )
    assert isinstance(status.retraining, RetrainingStatus)


def with_canary_counts(inputs: AnalysisInputs, requests: float, failed: float) -> AnalysisInputs:
    """The candidate's counts since it started serving (the blast radius's window)."""
    return dataclasses.replace(
        inputs,
        canary_requests=per_variant({"candidate": requests, "champion": 3 * requests}),
        canary_errors=per_variant({"candidate": failed, "champion": 0}),
    )


class TestLooksDuringAStep:
    """The error rate is looked at during the step: Failed aborts at once, Success
    waits for the end of the pause, Inconclusive holds."""

    def test_a_clearly_failing_candidate_is_rolled_back_mid_step(self) -> None:
        md = in_canary(deployment(), serving_since=T0)
        failing = analysis_inputs(requests=20, candidate_errors=10)
        inputs = LifecycleInputs(
            candidate=READY, analysis=with_canary_counts(failing, requests=20, failed=10)
        )
        outcome = step(md, inputs, timedelta(seconds=6))
        assert outcome.status.rollout is None
        assert outcome.status.phase is Phase.ROLLED_BACK
        assert outcome.status.last_rollback.startswith("step 1 failed: errorRate")
        entry = next(e for e in outcome.status.history if e.version == "upsell:v2")
        assert entry.blast_radius is not None
        assert (entry.blast_radius.requests, entry.blast_radius.failed) == (20, 10)
        assert entry.blast_radius.ended_at == T0 + timedelta(seconds=6)

    def test_a_healthy_look_mid_step_never_passes_the_step_early(self) -> None:
        md = in_canary(deployment())
        inputs = LifecycleInputs(candidate=READY, analysis=analysis_inputs())
        outcome = step(md, inputs, timedelta(seconds=30))
        rollout = outcome.status.rollout
        assert rollout is not None and rollout.step == 0 and not rollout.promoting
        assert rollout.step_started_at == T0
        assert {r.name for r in rollout.analysis} == {"errorRate", "failedRequests"}
        assert not any(e.reason == "CanaryStep" for e in outcome.events)

    def test_missing_data_mid_step_holds_without_counting_as_inconclusive(self) -> None:
        md = in_canary(deployment())
        down = LifecycleInputs(candidate=READY, analysis=analysis_inputs(error="refused"))
        outcome = step(md, down, timedelta(seconds=30))
        rollout = outcome.status.rollout
        assert rollout is not None and rollout.step == 0
        assert rollout.inconclusive_count == 0 and rollout.step_started_at == T0
        assert outcome.status.failed_versions == []

    def test_max_failed_requests_aborts_whatever_the_statistics_say(self) -> None:
        def bounded(spec: dict[str, Any]) -> None:
            spec["rollout"]["analysis"]["maxFailedRequests"] = 10

        md = in_canary(deployment(mutate=bounded), serving_since=T0)
        # 10 failures in 20,000 requests: well within the error-rate tolerance.
        quiet = analysis_inputs(requests=20_000, candidate_errors=10, champion_errors=10)
        inputs = LifecycleInputs(
            candidate=READY, analysis=with_canary_counts(quiet, requests=20_000, failed=10)
        )
        outcome = step(md, inputs, timedelta(seconds=30))
        assert outcome.status.rollout is None
        assert "failedRequests" in outcome.status.last_rollback

    def test_the_blast_radius_grows_look_by_look(self) -> None:
        md = in_canary(deployment(), serving_since=T0)
        first = step(
            md,
            LifecycleInputs(
                candidate=READY, analysis=with_canary_counts(analysis_inputs(), 100, 0)
            ),
            timedelta(seconds=10),
        )
        second = step(
            then(md, first),
            LifecycleInputs(
                candidate=READY, analysis=with_canary_counts(analysis_inputs(), 200, 1)
            ),
            timedelta(seconds=15),
        )
        assert second.status.rollout is not None
        radius = second.status.rollout.blast_radius
        assert (radius.requests, radius.failed) == (200, 1)
        assert radius.first_failure_at == T0 + timedelta(seconds=15)

    def test_the_promoted_version_keeps_its_blast_radius_in_history(self) -> None:
        canaried = HistoryEntry(
            version="upsell:v2", trigger="onDrift", trigger_id="t1", outcome="Canary",
            started_at=T0,
        )  # fmt: skip
        md = in_canary(deployment(), step_index=1, serving_since=T0)
        md = md.model_copy(update={"status": md.status.model_copy(update={"history": [canaried]})})
        inputs = LifecycleInputs(
            candidate=READY, analysis=with_canary_counts(analysis_inputs(), 800, 0)
        )
        promoting = step(md, inputs, timedelta(minutes=1))
        champion = {
            "metadata": {"generation": 2, "annotations": {ANNOTATION_VERSION: "upsell:v2"}},
            "spec": {"replicas": 1},
            "status": {
                "observedGeneration": 2,
                "replicas": 1,
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
            },
        }
        done = step(
            then(md, promoting),
            LifecycleInputs(candidate=READY, champion_deployment=champion),
            timedelta(minutes=2),
        )
        assert done.status.rollout is None
        entry = next(e for e in done.status.history if e.version == "upsell:v2")
        assert entry.outcome == "Promoted" and entry.blast_radius is not None
        assert entry.blast_radius.requests == 800
