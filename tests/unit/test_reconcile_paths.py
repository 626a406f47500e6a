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
from rollforward.api import ConditionType, ModelDeploymentStatus, Phase
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
    return {**manifest, "status": {"observedGeneration": 0, **dict.fromkeys(counts, replicas)}}


@dataclass
class KubeletCluster(FakeCluster):
    """A fake cluster whose Deployments become available as soon as they are applied."""

    def apply(self, manifest: dict[str, Any]) -> None:
        super().apply(_ready(manifest) if manifest["kind"] == "Deployment" else manifest)


def _predictions(counts: dict[str, float]) -> QueryResult:
    def samples(variant: str, version: str) -> list[Sample]:
        labels = {"namespace": "default", "model": "upsell", "variant": variant, "segment": ""}
        return [
            Sample({**labels, "version": version, "label": label}, value)
            for label, value in counts.items()
        ]

    healthy_candidate = samples("candidate", "upsell:v2")
    return QueryResult(
        tuple(samples("champion", "upsell:v1") + samples("champion", "upsell:v2"))
        + tuple(Sample(s.labels, HEALTHY[s.labels["label"]] / 2.5) for s in healthy_candidate)
    )


@dataclass
class Prometheus:
    """What the scraped bentos would say: predictions, errors and latency per variant."""

    champion_counts: dict[str, float] = field(default_factory=lambda: dict(HEALTHY))
    candidate_errors: float = 0.0
    down: bool = False

    def answer(self, promql: str, at: datetime) -> QueryResult:
        if self.down:
            return QueryResult(error="cannot connect")
        if BASELINE_RATIO in promql:
            ratios = {"upgrade": 0.2, "stay": 0.8}
            return QueryResult(
                tuple(
                    Sample({"namespace": "default", "model": "upsell", "version": v, "label": k}, r)
                    for v in ("upsell:v1", "upsell:v2")
                    for k, r in ratios.items()
                )
            )
        if PREDICTIONS_TOTAL in promql:
            return _predictions(self.champion_counts)
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
    assert len(world.asked) == 2  # the drift check: current window and training baseline
    world.now += timedelta(minutes=1)
    world.reconcile()
    assert world.asked == []  # same check interval, no canary: nothing is due
