"""pytest fixtures for the whole loop: a control plane whose pods really run (the local pod
runner), sharing a BentoML store and the session's Prometheus.

The cluster is a second one, separate from `local_cluster`: it has no kwok node, so every pod
lands on the runner's node, while the operator's integration tests keep kwok's fake pods.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.bento import build_soom_bento
from harness.cluster import LocalCluster
from harness.kube_api import KubeApi
from harness.pod_runner import PodRunner
from harness.prometheus import LocalPrometheus


@pytest.fixture(scope="session")
def runner_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane with no kwok node: pods wait for the pod runner's node."""
    with LocalCluster(tmp_path_factory.mktemp("runner-cluster"), node_count=0) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def runner_bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BentoML store the runner's pods serve from and retraining Jobs build into."""
    return tmp_path_factory.mktemp("runner-bentoml")


@pytest.fixture(scope="session")
def pod_runner(
    runner_cluster: LocalCluster,
    runner_bentoml_home: Path,
    local_prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PodRunner]:
    """The runner of `runner_cluster`'s pods, registering scrape targets in `local_prometheus`."""
    workdir = tmp_path_factory.mktemp("pod-runner")
    api = KubeApi(runner_cluster.kubeconfig_path, workdir / "credentials")
    with PodRunner(
        api, workdir, bentoml_home=runner_bentoml_home, scrape_targets=local_prometheus
    ) as runner:
        yield runner


@pytest.fixture
def runner_namespace(runner_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace of `runner_cluster` for one test, deleted (without waiting) afterwards."""
    with runner_cluster.temporary_namespace("r") as name:
        yield name


@pytest.fixture(scope="session")
def runner_soom_bento(runner_bentoml_home: Path) -> str:
    """The Soom bento (baseline, seed 0) built into the runner's store; returns its tag."""
    return build_soom_bento(runner_bentoml_home)
