"""Every lifecycle path through the whole reconcile (gather, decide, apply), with in-memory
fakes of Kubernetes and Prometheus and an injected clock: no processes, milliseconds.

The fake cluster plays the kubelet: a Deployment it is given is available at once, so each
path is driven only by time, Prometheus answers and the retraining Job's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devenv.api_cases import example_manifest
from fixtures.decision_inputs import T0, job_pod, per_variant, result
from fixtures.fakes import FakeCluster, FakeMetrics
from rollforward.api import ConditionType, ExperimentStatus, ModelDeploymentStatus, Phase
from rollforward.conditions import find_condition
from rollforward.measurements import QueryResult, Sample
from rollforward.reconcile import reconcile
from rollforward.serving.contract import (
    BASELINE_RATIO,
    BENTOML_REQUEST_DURATION,
    BENTOML_REQUESTS_TOTAL,
    PREDICTIONS_TOTAL,
)
from rollforward.settings import OperatorSettings

HEALTHY = {"upgrade": 200.0, "stay": 800.0}
"""The champion's predictions as its training baseline (0.2 / 0.8) expects."""
DRIFTING = {"upgrade": 600.0, "stay": 400.0}


def _ready(manifest: dict[str, Any]) -> dict[str, Any]:
    replicas = manifest["spec"].get("replicas", 1)
    counts = ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")
    available = [{"type": "Available", "status": "True"}]
    status = {"observedGeneration": 0, "conditions": available, **dict.fromkeys(counts, replicas)}
    return {**manifest, "status": status}


@dataclass
class KubeletCluster(FakeCluster):
    """A fake cluster whose Deployments become available as soon as they are applied."""

    def apply(self, manifest: dict[str, Any]) -> None:
        super().apply(_ready(manifest) if manifest["kind"] == "Deployment" else manifest)


def _predictions(counts: dict[str, float], candidate: str) -> QueryResult:
    def samples(variant: str, version: str) -> list[Sample]:
        labels = {"namespace": "default", "model": "upsell", "variant": variant, "segment": ""}
        return [
            Sample({**labels, "version": version, "label": label}, value)
            for label, value in counts.items()
        ]

    healthy_candidate = samples("candidate", candidate)
    return QueryResult(
        tuple(samples("champion", "upsell:v1") + samples("champion", candidate))
        + tuple(Sample(s.labels, HEALTHY[s.labels["label"]] / 2.5) for s in healthy_candidate)
    )


@dataclass
class Prometheus:
    """What the scraped bentos would say: predictions, errors and latency per variant."""

    champion_counts: dict[str, float] = field(default_factory=lambda: dict(HEALTHY))
    candidate_errors: float = 0.0
    down: bool = False
    candidate_version: str = "upsell:v2"

    def answer(self, promql: str, at: datetime) -> QueryResult:
        if self.down:
            return QueryResult(error="cannot connect")
        if BASELINE_RATIO in promql:
            ratios = {"upgrade": 0.2, "stay": 0.8}
            return QueryResult(
                tuple(
                    Sample({"namespace": "default", "model": "upsell", "version": v, "label": k}, r)
                    for v in ("upsell:v1", self.candidate_version)
                    for k, r in ratios.items()
                )
            )
        if PREDICTIONS_TOTAL in promql:
            return _predictions(self.champion_counts, self.candidate_version)
        if "http_response_code" in promql:
            return per_variant({"champion": 0.0, "candidate": self.candidate_errors})
        if BENTOML_REQUEST_DURATION in promql:
            return per_variant({"champion": 0.05, "candidate": 0.05})
        if BENTOML_REQUESTS_TOTAL in promql:
            return per_variant({"champion": 400.0, "candidate": 400.0})
        return QueryResult(error=f"unexpected query {promql}")


@dataclass
class World:
    """One ModelDeployment, its cluster, its Prometheus and the clock."""

    prometheus: Prometheus = field(default_factory=Prometheus)
    cluster: KubeletCluster = field(default_factory=KubeletCluster)
    manifest: dict[str, Any] = field(default_factory=example_manifest)
    now: datetime = T0
    asked: list[str] = field(default_factory=list)
    """The queries the last reconcile sent."""

    def __post_init__(self) -> None:
        self.manifest["metadata"].update(uid="uid-1", generation=1)

    @property
    def status(self) -> ModelDeploymentStatus:
        return ModelDeploymentStatus.model_validate(self.cluster.status)

    def reconcile(self) -> float | None:
        """One reconcile; returns when it asked to be requeued (seconds), if it did."""
        body = {**self.manifest, "status": dict(self.cluster.status)}
        metrics = FakeMetrics(answer=self.prometheus.answer)
        result = reconcile(body, self.cluster, metrics, OperatorSettings(), lambda: self.now)
        self.asked = metrics.asked
        return result.requeue_after

    def settle(self) -> None:
        """Reconcile as the child events after a write would, until nothing is written: a
        variant gets weight once it serves, and leaves after the router let go of it."""
        for _ in range(3):
            writes = self.cluster.writes
            self.reconcile()
            if self.cluster.writes == writes:
                return
        raise AssertionError("the children do not settle")

    def follow_requeues(self, done: Callable[[World], bool], limit: timedelta) -> None:
        """Reconcile only when the last reconcile asked to be requeued, as the handlers do."""
        end = self.now + limit
        while self.now < end:
            after = self.reconcile()
            if done(self):
                return
            assert after is not None, f"no requeue in {self.status.phase}"
            self.now += timedelta(seconds=after)
        raise AssertionError(f"still {self.status.phase} at {self.now - T0}")

    def run_until(self, done: Callable[[World], bool], limit: timedelta) -> None:
        """Reconcile once a minute, as the resync timer would, until `done` or `limit`."""
        end = self.now + limit
        while True:
            self.reconcile()
            if done(self) or self.now >= end:
                break
            self.now += timedelta(minutes=1)
        assert done(self), f"still {self.status.phase} at {self.now - T0}"

    def phase_is(self, phase: Phase) -> Callable[[World], bool]:
        return lambda world: world.status.phase is phase

    def finish_job(self, termination_message: str) -> None:
        retraining = self.status.retraining
        assert retraining is not None
        job = self.cluster.children[("Job", retraining.job_name)]
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
        self.cluster.pods[retraining.job_name] = job_pod(termination_message)

    def has(self, kind: str, name: str) -> bool:
        return (kind, name) in self.cluster.children

    def condition(self, type_: ConditionType) -> tuple[str, str]:
        found = find_condition(self.status.conditions, type_)
        assert found is not None
        return found.status, found.reason


def drifted_world() -> World:
    world = World(Prometheus(champion_counts=dict(DRIFTING)))
    world.run_until(world.phase_is(Phase.RETRAINING), timedelta(minutes=20))
    return world


def canary_world() -> World:
    world = drifted_world()
    world.finish_job(result().to_termination_message())
    world.run_until(world.phase_is(Phase.CANARY), timedelta(minutes=2))
    return world


def test_stable_champion_is_ready_and_a_resync_writes_nothing() -> None:
    world = World()
    world.run_until(world.phase_is(Phase.STABLE), timedelta(minutes=15))
    world.settle()
    assert world.condition(ConditionType.READY) == ("True", "Reconciled")
    assert world.condition(ConditionType.DRIFTED) == ("False", "NoDrift")
    assert world.has("Deployment", "upsell-champion")
    assert world.status.observed_generation == 1
    writes = world.cluster.writes
    world.reconcile()
    assert world.cluster.writes == writes
    assert not [key for key in world.cluster.children if key[0] == "Job"]


def test_drift_starts_one_retraining_job() -> None:
    world = drifted_world()
    assert world.condition(ConditionType.DRIFTED) == ("True", "DriftDetected")
    assert world.condition(ConditionType.RETRAINING) == ("True", "JobRunning")
    jobs = [name for kind, name in world.cluster.children if kind == "Job"]
    assert len(jobs) == 1
    assert {"DriftDetected", "RetrainingStarted"} <= {e.reason for e in world.cluster.events}


def test_a_job_created_just_before_a_lost_status_write_is_adopted_as_it_is() -> None:
    """Given a retraining Job created by an operator killed before it wrote the status,
    when the restarted operator starts the same attempt with a newer drift report,
    then it adopts the Job under the attempt's name instead of re-applying its (immutable)
    pod template, and the roll-forward goes on (soak run 107 stalled here)."""
    world = drifted_world()
    (job,) = [name for kind, name in world.cluster.children if kind == "Job"]
    world.cluster.status = {k: v for k, v in world.cluster.status.items() if k != "retraining"}
    world.cluster.status["retrainStarts"] = []
    world.prometheus.champion_counts = {"upgrade": 700.0, "stay": 300.0}
    world.now += timedelta(minutes=10)  # a drift check is due: a newer report

    world.reconcile()

    assert [name for kind, name in world.cluster.children if kind == "Job"] == [job]
    retraining = world.status.retraining
    assert retraining is not None and retraining.job_name == job
    world.finish_job(result().to_termination_message())
    world.run_until(world.phase_is(Phase.CANARY), timedelta(minutes=2))


def test_accepted_candidate_starts_the_canary() -> None:
    world = canary_world()
    assert world.has("Deployment", "upsell-candidate")
    assert world.condition(ConditionType.RETRAINING) == ("False", "CandidateAccepted")
    assert world.condition(ConditionType.PROGRESSING)[0] == "True"
    assert world.status.rollout is not None
    assert world.status.rollout.candidate_version == "upsell:v2"


def test_canary_steps_then_promotes_the_candidate() -> None:
    world = canary_world()
    world.run_until(lambda w: w.status.champion == "upsell:v2", timedelta(minutes=30))
    world.settle()
    assert world.status.phase is Phase.STABLE
    assert world.status.rollout is None
    assert not world.has("Deployment", "upsell-candidate")
    assert [e.outcome for e in world.status.history][-2:] == ["Superseded", "Promoted"]
    reasons = [e.reason for e in world.cluster.events]
    assert reasons.index("CanaryStep") < reasons.index("Promoting") < reasons.index("Promoted")


def test_candidate_below_the_gate_is_rejected_and_never_served() -> None:
    world = drifted_world()
    world.finish_job(result(holdout_auc=0.6).to_termination_message())
    world.reconcile()
    assert world.condition(ConditionType.RETRAINING) == ("False", "CandidateRejected")
    assert world.status.rollout is None
    assert not world.has("Deployment", "upsell-candidate")
    assert world.status.history[-1].outcome == "Rejected"


def test_candidate_with_errors_is_rolled_back() -> None:
    world = canary_world()
    world.prometheus.candidate_errors = 40.0
    world.run_until(world.phase_is(Phase.ROLLED_BACK), timedelta(minutes=5))
    world.settle()
    assert not world.has("Deployment", "upsell-candidate")
    assert "upsell:v2" in world.status.failed_versions
    assert world.status.history[-1].outcome == "RolledBack"
    assert "RolledBack" in {e.reason for e in world.cluster.events}


def test_a_running_canary_is_requeued_and_a_failing_candidate_stopped_mid_step() -> None:
    world = canary_world()
    world.reconcile()  # the candidate serves: its first step's clock starts
    rollout = world.status.rollout
    assert rollout is not None and rollout.candidate_ready
    started = world.now
    world.prometheus.candidate_errors = 200.0
    world.follow_requeues(world.phase_is(Phase.ROLLED_BACK), timedelta(minutes=5))
    # The example's first step pauses 2 minutes; the looks every 5 s stopped it first.
    assert world.now - started < timedelta(minutes=2)
    assert world.status.last_rollback.startswith("step 1 failed: errorRate")
    assert world.reconcile() is None  # nothing runs: no more requeues


def test_inconclusive_analysis_holds_the_canary_and_never_rolls_back() -> None:
    world = canary_world()
    world.prometheus.down = True
    world.now += timedelta(minutes=10)
    world.reconcile()
    rollout = world.status.rollout
    assert rollout is not None
    assert rollout.step == 0
    assert rollout.inconclusive_count == 1
    assert {r.outcome for r in rollout.analysis} == {"Inconclusive"}
    assert world.status.phase is Phase.CANARY
    assert world.has("Deployment", "upsell-candidate")
    assert world.condition(ConditionType.MONITORING_AVAILABLE)[0] == "False"


def test_without_a_prometheus_url_monitoring_says_none_is_configured() -> None:
    world = World()
    del world.manifest["spec"]["monitoring"]["prometheusUrl"]
    world.reconcile()
    assert world.condition(ConditionType.MONITORING_AVAILABLE) == (
        "False",
        "NoPrometheusConfigured",
    )
    assert world.condition(ConditionType.DRIFTED) == ("False", "CheckInconclusive")
    assert "NoPrometheusConfigured" in {e.reason for e in world.cluster.events}


def test_a_bad_schedule_is_reported_and_never_fails_the_reconcile() -> None:
    world = World()
    world.manifest["spec"]["retraining"].update(trigger="schedule", schedule="61 * * * *")
    world.reconcile()
    assert world.condition(ConditionType.READY)[1] == "InvalidSpec"
    ready = find_condition(world.status.conditions, ConditionType.READY)
    assert ready is not None and "spec.retraining.schedule" in ready.message


def test_gather_asks_prometheus_only_what_is_due() -> None:
    world = World()
    world.reconcile()
    # The drift check (current window, training baseline) and, at the same tick, the
    # estimated quality (score histogram, calibrations).
    assert len(world.asked) == 4
    world.now += timedelta(minutes=1)
    world.reconcile()
    assert world.asked == []  # same check interval, no canary: nothing is due


def experiment_world(approval: str = "Automatic") -> World:
    """A stable champion (upsell:v1) whose A/B experiment against the challenger
    (upsell:v1-gbm) has just concluded ChallengerBetter, with onChallengerBetter Promote."""
    world = World(Prometheus(candidate_version="upsell:v1-gbm"))
    spec = world.manifest["spec"]
    spec["quality"] = {"positiveLabel": "upgrade"}
    spec["experiment"] = {"onChallengerBetter": "Promote"}
    spec["rollout"]["approval"] = approval
    world.run_until(world.phase_is(Phase.STABLE), timedelta(minutes=15))
    world.settle()
    world.cluster.status["experiment"] = _challenger_better(world.now)
    return world


def _challenger_better(at: datetime) -> dict[str, Any]:
    verdict = ExperimentStatus(
        verdict="ChallengerBetter",
        metric="outcomeRate",
        champion="champion",
        challenger="challenger",
        champion_version="upsell:v1",
        challenger_version="upsell:v1-gbm",
        started_at=at - timedelta(days=3),
        concluded_at=at,
        effect=0.04,
        lower=0.01,
        upper=0.07,
        confidence=0.95,
        looks=300,
    )
    return verdict.model_dump(by_alias=True, exclude_none=True, mode="json")


def _handed_over(world: World) -> int:
    return [e.reason for e in world.cluster.events].count("ChallengerHandedOver")


def test_a_challenger_better_verdict_goes_through_the_canary_to_champion() -> None:
    """Given an experiment that concluded ChallengerBetter with onChallengerBetter Promote,
    when the operator reconciles, then the challenger's version is canaried and promoted as a
    retrained candidate would be, the old champion is superseded, the challenger arm leaves
    (its version is not served twice) and the experiment waits for a new challenger."""
    world = experiment_world()
    world.reconcile()
    rollout = world.status.rollout
    assert rollout is not None and rollout.candidate_version == "upsell:v1-gbm"
    assert world.has("Deployment", "upsell-candidate")

    world.run_until(lambda w: w.status.champion == "upsell:v1-gbm", timedelta(minutes=30))
    world.settle()

    status = world.status
    assert status.phase is Phase.STABLE and status.rollout is None
    superseded, promoted = status.history[-2:]
    assert (superseded.version, superseded.outcome) == ("upsell:v1", "Superseded")
    assert (promoted.version, promoted.outcome, promoted.trigger) == (
        "upsell:v1-gbm",
        "Promoted",
        "experiment",
    )
    assert not world.has("Deployment", "upsell-candidate")
    assert not world.has("Deployment", "upsell-challenger")
    assert status.split == "champion=100"
    assert _handed_over(world) == 1
    reasons = [e.reason for e in world.cluster.events]
    assert reasons.index("ChallengerHandedOver") < reasons.index("CanaryStep")
    assert reasons.index("CanaryStep") < reasons.index("Promoted")
    world.run_until(
        lambda w: w.status.experiment is not None and w.status.experiment.verdict == "Running",
        timedelta(minutes=10),
    )
    experiment = world.status.experiment
    assert experiment is not None
    assert (experiment.champion_version, experiment.challenger_version) == ("upsell:v1-gbm", "")


def test_a_challenger_whose_canary_fails_is_rolled_back_and_not_promoted_again() -> None:
    """Given the challenger's canary, when its analysis fails, then it rolls back, the old
    champion and the challenger arm serve on, and neither the same verdict (after an
    operator restart) nor a new ChallengerBetter verdict starts the canary again."""
    world = experiment_world()
    world.reconcile()
    world.prometheus.candidate_errors = 40.0
    world.run_until(world.phase_is(Phase.ROLLED_BACK), timedelta(minutes=5))
    world.settle()

    status = world.status
    assert status.champion == "upsell:v1"
    assert "upsell:v1-gbm" in status.failed_versions
    assert (status.history[-1].trigger, status.history[-1].outcome) == ("experiment", "RolledBack")
    assert world.has("Deployment", "upsell-challenger")
    assert not world.has("Deployment", "upsell-candidate")

    world.now += timedelta(minutes=30)
    world.reconcile()
    assert world.status.rollout is None and _handed_over(world) == 1

    world.cluster.status["experiment"] = _challenger_better(world.now)  # a new verdict
    world.reconcile()
    assert world.status.rollout is None and _handed_over(world) == 1
    assert "ChallengerNotPromoted" in {e.reason for e in world.cluster.events}


def test_a_challenger_canary_with_manual_approval_waits_for_it() -> None:
    """Given approval Manual, when the challenger's canary passes every step, then it waits
    for rollforward.io/approve as a retrained candidate does, and promotes once approved."""
    world = experiment_world(approval="Manual")
    world.run_until(
        lambda w: w.status.rollout is not None and w.status.rollout.awaiting_approval,
        timedelta(minutes=30),
    )
    assert world.status.champion == "upsell:v1"
    world.manifest["metadata"]["annotations"] = {"rollforward.io/approve": "yes"}
    world.run_until(lambda w: w.status.champion == "upsell:v1-gbm", timedelta(minutes=5))
