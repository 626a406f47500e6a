"""pytest fixtures for the local control plane and Prometheus.

They are lazy like every pytest fixture: a test session that requests neither starts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.cluster import REPO_ROOT, LocalCluster
from harness.prometheus import LocalPrometheus

CRDS_DIR = REPO_ROOT / "crds"


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One control plane (etcd, apiserver, controller-manager, scheduler, kwok) per session."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def installed_crds(local_cluster: LocalCluster) -> list[str]:
    """Every CRD in crds/, applied to the session cluster and Established; returns their names."""
    return local_cluster.install_crds(CRDS_DIR)


@pytest.fixture
def cluster_namespace(local_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    with local_cluster.temporary_namespace("t") as name:
        yield name


@pytest.fixture(scope="session")
def local_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """One Prometheus per session; tests add their own targets under their own job names."""
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as prometheus:
        yield prometheus


@pytest.fixture
def fresh_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A Prometheus of this test's own (starts in well under a second), free to stop and kill."""
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as prometheus:
        yield prometheus
