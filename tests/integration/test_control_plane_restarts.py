"""The API server and etcd restart under a roll-forward; the operator reconnects and finishes.

Given a ModelDeployment asked for one retraining on a control plane of this module's own
(restarting the session's would disturb every other test), when the kube-apiserver is
stopped during the canary, or etcd during the promotion, and started again with the same
flags, ports and data, then the same operator process (never restarted) reconnects and the
roll-forward ends promoted: exactly one Job for the trigger, no orphaned children, a
consistent history, and no rollback or failed version (a decision taken while the API was
gone would be one on missing data).

The promotion waits for the champion's Deployment to roll, which on kwok takes a moment;
kwok is stopped first so the promotion holds still while etcd is down, then started again.
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
    CHAMPION,
    DRIFTED_SHARES,
    EXPECTED_CHILDREN,
    TRAINING_SHARES,
    manual_rollforward,
)
from devenv.loop_manifests import (
    CHILD_SELECTOR as SELECTOR,
)
from devenv.metrics_exporter import Regime, VariantExporter
from devenv.operator import OperatorProcess, grant_operator_rbac
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from fixtures.fixtures_cluster import CRDS_DIR

OUTAGE_SECONDS = 4.0
"""Long enough for the operator's watch, its timers and its writes to fail a few times."""


@dataclass
class Plane:
    cluster: LocalCluster
    kubeconfig: Path
    prometheus: LocalPrometheus
    workdir: Path


@dataclass
class Run:
    plane: Plane
    namespace: str
    version: str
    trigger: str

    def status(self) -> dict[str, Any]:
        found = self.plane.cluster.kubectl_json("-n", self.namespace, "get", "md", "upsell")
        body: dict[str, Any] = found.get("status") or {}
        return body

    def wait(self, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        wait_until(lambda: condition(self.status()), timeout=180, interval=0.3, what=what)

    def names(self, kinds: str) -> list[str]:
        listed = self.plane.cluster.kubectl_json("-n", self.namespace, "get", kinds, "-l", SELECTOR)
        return sorted(f"{i['kind']}/{i['metadata']['name']}" for i in listed["items"])


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    workdir = tmp_path_factory.mktemp("restarts")
    with LocalCluster(workdir / "cluster") as cluster:
        cluster.install_crds(CRDS_DIR)
        kubeconfig = grant_operator_rbac(cluster, workdir)
        with LocalPrometheus(workdir / "prometheus") as prometheus:
            yield Plane(cluster, kubeconfig, prometheus, workdir)


@pytest.fixture
def run(plane: Plane, request: pytest.FixtureRequest) -> Iterator[Run]:
    """A namespace with a champion and a candidate exporter scraped as its bento pods."""
    namespace = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    plane.cluster.kubectl("create", "namespace", namespace)
    plane.cluster.wait_for_service_account(namespace, "default")
    version = "upsell:v2"
    exporters = []
    for variant, serves in (("champion", CHAMPION), ("candidate", version)):
        exporter = VariantExporter("upsell", serves, variant).start()
        exporter.regime = Regime(label_shares=DRIFTED_SHARES)
        exporter.set_baseline(TRAINING_SHARES if variant == "champion" else DRIFTED_SHARES)
        exporter.scrape_as_pod(plane.prometheus, namespace, f"upsell-{variant}-0")
        exporters.append(exporter)
    yield Run(plane, namespace, version, trigger=f"{namespace}-1")
    for exporter in exporters:
        exporter.stop()


def start_rollforward(run: Run) -> None:
    run.plane.cluster.apply(
        manual_rollforward(run.namespace, run.plane.prometheus.url, run.version, run.trigger, "4s")
    )


def outage(cluster: LocalCluster, component: str) -> None:
    cluster.stop_component(component)
    time.sleep(OUTAGE_SECONDS)
    cluster.start_component(component)


def assert_promoted_once(run: Run, operator: OperatorProcess) -> None:
    run.wait(
        lambda s: s.get("champion") == run.version and s.get("phase") == "Stable",
        f"{run.version} to be promoted after the restart",
    )
    wait_until(
        lambda: "Deployment/upsell-candidate" not in run.names("deployments"),
        timeout=60,
        what="the candidate's removal",
    )
    # The same process carried on: it reconnected rather than crashed.
    assert operator.process.running(), operator.process.log_tail()
    final = run.status()
    assert run.names("jobs") == [f"Job/{final['retraining']['jobName']}"], final["retraining"]
    assert run.names("deployments,services,configmaps") == EXPECTED_CHILDREN
    history = [(h["version"], h["outcome"]) for h in final["history"]]
    assert history == [(CHAMPION, "Superseded"), (run.version, "Promoted")], history
    assert final["handledRequests"] == [f"retrain={run.trigger}"]
    assert final.get("failedVersions", []) == [] and not final.get("lastRollback")


def test_apiserver_restarts_during_the_canary(plane: Plane, run: Run) -> None:
    cluster = plane.cluster
    with OperatorProcess(plane.kubeconfig, plane.workdir / run.namespace, namespaces=[
        run.namespace
    ]) as operator:  # fmt: skip
        pid = operator.process.pid
        start_rollforward(run)
        run.wait(lambda s: s.get("phase") == "Canary", "the canary to start")

        outage(cluster, "kube-apiserver")

        assert_promoted_once(run, operator)
        assert operator.process.pid == pid


def test_etcd_restarts_during_the_promotion(plane: Plane, run: Run) -> None:
    cluster = plane.cluster
    with OperatorProcess(plane.kubeconfig, plane.workdir / run.namespace, namespaces=[
        run.namespace
    ]) as operator:  # fmt: skip
        pid = operator.process.pid
        start_rollforward(run)
        run.wait(lambda s: s.get("phase") == "Canary", "the canary to start")
        # With kwok gone, the champion's new pods cannot become Ready: the promotion holds.
        cluster.stop_component("kwok")
        try:
            run.wait(lambda s: s.get("phase") == "Promoting", "the promotion to start")
            outage(cluster, "etcd")
            # Still promoting: the champion has not rolled, so nothing may have finished it.
            assert run.status().get("phase") == "Promoting"
        finally:
            cluster.start_component("kwok")

        assert_promoted_once(run, operator)
        assert operator.process.pid == pid
