"""Retraining and roll-forward on the real control plane with a real Prometheus.

kwok simulates the pods: a retraining Job's pod terminates with the termination message
its template carries (the test stands in for the kubelet), and bento pods are Ready without
running. Their metric series come from steerable exporters that a real Prometheus scrapes
with the labels Kubernetes service discovery would give them, relabelled as the chart's
PodMonitor does. The end-to-end tests run all
of it for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.loop_manifests import (
    CANDIDATE,
    CHAMPION,
    DRIFTED_SHARES,
    TRAINING_SHARES,
    manifest,
    retraining_result,
)
from devenv.metrics_exporter import Regime, VariantExporter
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus


@dataclass
class Loop:
    cluster: LocalCluster
    namespace: str
    prometheus: LocalPrometheus
    champion: VariantExporter
    candidate: VariantExporter
    operator: OperatorProcess

    def status(self) -> dict[str, Any]:
        body = self.cluster.kubectl_json("-n", self.namespace, "get", "md", "upsell")
        status: dict[str, Any] = body.get("status") or {}
        return status

    def wait(
        self, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = 180
    ) -> dict[str, Any]:
        wait_until(lambda: condition(self.status()), timeout=timeout, interval=1, what=what)
        return self.status()

    def names(self, kind: str) -> list[str]:
        listed = self.cluster.kubectl_json("-n", self.namespace, "get", kind)
        return sorted(item["metadata"]["name"] for item in listed["items"])

    def event_reasons(self) -> set[str]:
        events = self.cluster.kubectl_json("-n", self.namespace, "get", "events")["items"]
        return {e["reason"] for e in events if e["involvedObject"]["name"] == "upsell"}


def exporter(
    prometheus: LocalPrometheus, namespace: str, variant: str, version: str
) -> VariantExporter:
    running = VariantExporter("upsell", version, variant).start()
    running.scrape_as_pod(prometheus, namespace, f"upsell-{variant}-0")
    return running


@pytest.fixture
def loop(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    fresh_prometheus: LocalPrometheus,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> Iterator[Loop]:
    champion = exporter(fresh_prometheus, cluster_namespace, "champion", CHAMPION)
    champion.set_baseline(TRAINING_SHARES)
    champion.regime = Regime(label_shares=DRIFTED_SHARES)
    candidate = exporter(fresh_prometheus, cluster_namespace, "candidate", CANDIDATE)
    candidate.set_baseline(DRIFTED_SHARES)
    candidate.regime = Regime(label_shares=DRIFTED_SHARES)
    with OperatorProcess(operator_kubeconfig, tmp_path, namespaces=[cluster_namespace]) as operator:
        yield Loop(
            local_cluster, cluster_namespace, fresh_prometheus, champion, candidate, operator
        )
        log = operator.log_path.read_text()
    champion.stop()
    candidate.stop()
    assert "is forbidden: User" not in log
    assert "Traceback" not in log, log[-3000:]


def test_drift_leads_to_one_job_a_canary_and_promotion(loop: Loop) -> None:
    loop.cluster.apply(manifest(loop.namespace, loop.prometheus.url, retraining_result()))

    canary = loop.wait(
        lambda s: s.get("split") == "champion=50 candidate=50",
        "the candidate to serve its first step's share",
    )
    assert canary["phase"] == "Canary"
    assert canary["rollout"]["candidateVersion"] == CANDIDATE
    assert canary["rollout"]["candidateReady"] is True
    assert "upsell-candidate" in loop.names("deployments")

    final = loop.wait(
        lambda s: s.get("champion") == CANDIDATE and s.get("phase") == "Stable", "promotion"
    )
    assert loop.names("jobs") == [final["retraining"]["jobName"]]
    outcomes = {(h["version"], h["outcome"]) for h in final["history"]}
    assert {(CHAMPION, "Superseded"), (CANDIDATE, "Promoted")} <= outcomes
    assert final["split"] == "champion=100"
    assert {
        "DriftDetected",
        "RetrainingStarted",
        "CandidateAccepted",
        "Promoting",
        "Promoted",
    } <= loop.event_reasons()
    wait_until(
        lambda: "upsell-candidate" not in loop.names("deployments"),
        timeout=60,
        what="candidate removal",
    )
    champion = loop.cluster.kubectl_json(
        "-n", loop.namespace, "get", "deployment", "upsell-champion"
    )
    assert champion["metadata"]["annotations"]["rollforward.io/version"] == CANDIDATE


def test_candidate_that_fails_acceptance_is_never_deployed(loop: Loop) -> None:
    loop.cluster.apply(manifest(loop.namespace, loop.prometheus.url, retraining_result(0.55)))
    final = loop.wait(
        lambda s: (s.get("retraining") or {}).get("phase") == "Rejected",
        "the candidate to be rejected",
    )
    assert "minAuc" in final["retraining"]["message"]
    assert CANDIDATE in final["failedVersions"]
    time.sleep(5)
    assert "upsell-candidate" not in loop.names("deployments")
    assert loop.status().get("champion") == CHAMPION
    assert len(loop.names("jobs")) == 1


def test_candidate_with_raised_error_rate_is_rolled_back(loop: Loop) -> None:
    loop.candidate.regime = Regime(label_shares=DRIFTED_SHARES, error_ratio=0.3)
    loop.cluster.apply(manifest(loop.namespace, loop.prometheus.url, retraining_result()))
    final = loop.wait(lambda s: s.get("phase") == "RolledBack", "the rollback")
    assert final["champion"] == CHAMPION
    assert final["split"] == "champion=100"
    assert CANDIDATE in final["failedVersions"]
    assert "errorRate" in final["lastRollback"]
    assert "RolledBack" in loop.event_reasons()
    wait_until(
        lambda: "upsell-candidate" not in loop.names("deployments"),
        timeout=60,
        what="candidate removal",
    )
    # The rolled-back version is never retried, however long the drift lasts.
    time.sleep(8)
    assert len(loop.names("jobs")) <= 2
    assert "upsell-candidate" not in loop.names("deployments")


def test_a_clearly_failing_candidate_is_rolled_back_long_before_its_pause_ends(
    loop: Loop,
) -> None:
    """Given a canary step with a 10-minute pause, looked at every second,
    when the candidate fails half its requests,
    then a look during the step rolls it back, and status keeps what it cost."""
    loop.candidate.regime = Regime(label_shares=DRIFTED_SHARES, error_ratio=0.5)
    md = manifest(loop.namespace, loop.prometheus.url, retraining_result())
    md["spec"]["rollout"]["steps"] = [{"weight": 50, "pause": "10m"}]
    md["spec"]["rollout"]["analysis"]["interval"] = "1s"
    loop.cluster.apply(md)
    final = loop.wait(lambda s: s.get("phase") == "RolledBack", "the rollback", timeout=240)
    assert final["lastRollback"].startswith("step 1 failed: errorRate")
    entry = next(h for h in final["history"] if h["version"] == CANDIDATE)
    radius = entry["blastRadius"]
    assert radius["failed"] > 0 and radius["requests"] >= radius["failed"]
    assert "firstFailureAt" in radius and "endedAt" in radius


def test_prometheus_down_during_analysis_holds_instead_of_rolling_back(loop: Loop) -> None:
    loop.cluster.apply(manifest(loop.namespace, loop.prometheus.url, retraining_result()))
    loop.wait(lambda s: bool((s.get("rollout") or {}).get("candidateReady")), "candidate ready")
    loop.prometheus.stop()
    try:
        held = loop.wait(
            lambda s: (s.get("rollout") or {}).get("inconclusiveCount", 0) >= 2,
            "inconclusive analyses while Prometheus is down",
            timeout=90,
        )
        assert held["phase"] == "Canary"
        assert held.get("failedVersions", []) == []
        assert held["split"] == "champion=50 candidate=50"
    finally:
        loop.prometheus.start()
    final = loop.wait(
        lambda s: s.get("champion") == CANDIDATE and s.get("phase") == "Stable",
        "promotion after Prometheus is back",
    )
    assert final.get("failedVersions", []) == []
