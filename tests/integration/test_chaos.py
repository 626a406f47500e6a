"""Chaos: the operator is SIGKILLed at a random moment of the roll-forward and restarted.

Given a ModelDeployment and a manual retraining request, when the operator is killed at a
random point between the request and the end of the promotion and started again, then
every run ends promoted, with exactly one Job for the trigger, no orphaned children and a
consistent history. Progress lives in status and every child has a deterministic name,
so a restart can only continue, never repeat. The runs and where each was killed are
written to the test log (`-rA` or the junit report shows them).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.loop_manifests import CHAMPION, DRIFTED_SHARES, TRAINING_SHARES, manifest
from devenv.metrics_exporter import Regime, VariantExporter
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.serving.contract import EvaluationMetrics, RetrainingMetrics, RetrainingResult

RUNS = 20
FLOW_SECONDS = 18.0
"""About how long a request takes to become a promotion here; kills land inside it."""
SELECTOR = "app.kubernetes.io/managed-by=rollforward,rollforward.io/model-deployment=upsell"


@dataclass
class Outcome:
    run: int
    killed_after: float
    phase_at_kill: str
    seconds_to_promoted: float


def result_for(version: str) -> str:
    evaluation = EvaluationMetrics(auc=0.85, accuracy=0.8, recall=0.6, samples=2000)
    return RetrainingResult(
        version=version,
        accepted=True,
        metrics=RetrainingMetrics(holdout=evaluation, recent=evaluation),
        baseline_distribution=DRIFTED_SHARES,
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        training_rows=5000,
    ).to_termination_message()


def chaos_manifest(namespace: str, prometheus: str, version: str, run: int) -> dict[str, Any]:
    body = manifest(namespace, prometheus, result_for(version))
    body["metadata"]["annotations"] = {"rollforward.io/retrain": f"chaos-{run}"}
    spec = body["spec"]
    spec["retraining"]["trigger"] = "manual"
    spec["retraining"]["maxPerDay"] = 100
    spec["rollout"] = {
        "steps": [{"weight": 50, "pause": "3s"}],
        "analysis": {"minRequests": 10, "maxErrorRateIncrease": 0.05},
    }
    return body


@pytest.fixture(scope="module")
def chaos(
    local_cluster: LocalCluster, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LocalPrometheus, VariantExporter, VariantExporter, Path]]:
    namespace = "chaos"
    local_cluster.kubectl("create", "namespace", namespace)
    local_cluster.wait_for_service_account(namespace, "default")
    workdir = tmp_path_factory.mktemp("chaos")
    kubeconfig = operator_kubeconfig
    with LocalPrometheus(workdir / "prometheus") as prometheus:
        exporters = []
        for variant, version in (("champion", CHAMPION), ("candidate", "upsell:v2")):
            exporter = VariantExporter("upsell", version, variant).start()
            exporter.regime = Regime(label_shares=DRIFTED_SHARES)
            exporter.set_baseline(TRAINING_SHARES if variant == "champion" else DRIFTED_SHARES)
            exporter.scrape_as_pod(prometheus, namespace, f"upsell-{variant}-0")
            exporters.append(exporter)
        yield namespace, prometheus, exporters[0], exporters[1], kubeconfig
        for exporter in exporters:
            exporter.stop()


def status(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "md", "upsell")
    body: dict[str, Any] = found.get("status") or {}
    return body


def promoted_to(cluster: LocalCluster, namespace: str, version: str) -> bool:
    now = status(cluster, namespace)
    return now.get("champion") == version and now.get("phase") == "Stable"


def names(cluster: LocalCluster, namespace: str, kinds: str, selector: str = SELECTOR) -> list[str]:
    listed = cluster.kubectl_json("-n", namespace, "get", kinds, "-l", selector)
    return sorted(f"{i['kind']}/{i['metadata']['name']}" for i in listed["items"])


def test_operator_killed_at_random_points_always_ends_promoted(
    local_cluster: LocalCluster,
    chaos: tuple[str, LocalPrometheus, VariantExporter, VariantExporter, Path],
    tmp_path: Path,
) -> None:
    namespace, prometheus, _, candidate, kubeconfig = chaos
    rng = random.Random(20261127)
    outcomes: list[Outcome] = []
    for run in range(RUNS):
        version = f"upsell:v2-run{run}"
        candidate.serve_version(version, DRIFTED_SHARES)
        workdir = tmp_path / f"run{run}"
        operator = OperatorProcess(kubeconfig, workdir / "a", namespaces=[namespace]).start()
        started = time.monotonic()
        local_cluster.apply(chaos_manifest(namespace, prometheus.url, version, run))
        kill_after = rng.uniform(0.5, FLOW_SECONDS)
        time.sleep(kill_after)
        phase_at_kill = status(local_cluster, namespace).get("phase", "-")
        operator.kill()
        with OperatorProcess(kubeconfig, workdir / "b", namespaces=[namespace]) as restarted:
            wait_until(
                functools.partial(promoted_to, local_cluster, namespace, version),
                timeout=180,
                interval=0.5,
                what=f"run {run} (killed after {kill_after:.1f}s in {phase_at_kill}) to promote",
            )
            promoted_after = time.monotonic() - started
            wait_until(
                lambda: (
                    "Deployment/upsell-candidate"
                    not in names(local_cluster, namespace, "deployments")
                ),
                timeout=60,
                what="the candidate's removal",
            )
            final = status(local_cluster, namespace)
            log = restarted.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]

        jobs = names(local_cluster, namespace, "jobs")
        assert jobs == [f"Job/{final['retraining']['jobName']}"], (run, jobs)
        assert names(local_cluster, namespace, "deployments,services,configmaps") == [
            "ConfigMap/upsell-router",
            "Deployment/upsell-champion",
            "Deployment/upsell-router",
            "Service/upsell-champion",
            "Service/upsell-router",
        ], run
        history = [(h["version"], h["outcome"]) for h in final["history"]]
        assert history == [(CHAMPION, "Superseded"), (version, "Promoted")], (run, history)
        assert final["handledRequests"] == [f"retrain=chaos-{run}"], run
        assert final.get("failedVersions", []) == [], run
        outcomes.append(Outcome(run, kill_after, phase_at_kill, promoted_after))

        local_cluster.kubectl("-n", namespace, "delete", "md", "upsell", "--wait=true")
        wait_until(
            lambda: names(local_cluster, namespace, "deployments,services,configmaps,jobs") == [],
            timeout=90,
            what="garbage collection between runs",
        )

    print("\nrun  killed-after  phase-at-kill  promoted-after")
    for o in outcomes:
        promoted = f"{o.seconds_to_promoted:>12.1f}s"
        print(f"{o.run:>3}  {o.killed_after:>10.1f}s  {o.phase_at_kill:<13}  {promoted}")
    phases = {o.phase_at_kill for o in outcomes}
    assert len(outcomes) == RUNS
    assert len(phases) >= 3, f"kills should land in several phases of the flow, got {phases}"
