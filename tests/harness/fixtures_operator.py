"""pytest fixtures that run the real operator under the chart's RBAC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cluster import LocalCluster
from harness.operator import OperatorProcess, grant_operator_rbac


@pytest.fixture(scope="session")
def operator_kubeconfig(
    local_cluster: LocalCluster, installed_crds: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig of the operator's ServiceAccount, bound to exactly the chart's rules."""
    return grant_operator_rbac(local_cluster, tmp_path_factory.mktemp("operator"))


@pytest.fixture
def operator(
    operator_kubeconfig: Path, cluster_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator watching this test's namespace; its log must show no RBAC denial."""
    with OperatorProcess(operator_kubeconfig, tmp_path, namespaces=[cluster_namespace]) as running:
        yield running
    log = running.log_path.read_text()
    assert "is forbidden: User" not in log, "the operator hit RBAC denials"
