"""`kubectl rollforward` against a cluster whose rollforward.io API is missing or another version.

A control plane of its own, since it installs and replaces the ModelDeployment CRD: first none
(not installed), then one serving only v1beta1, as a newer operator's chart would (version
mismatch). Each is one line on stderr and exit code 1.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devenv.cluster import REPO_ROOT, LocalCluster
from rollforward.cli import main

CRD_FILE = REPO_ROOT / "crds" / "modeldeployments.rollforward.io.yaml"


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("bare-cluster"), node_count=1) as cluster:
        yield cluster


def run(kubeconfig: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*argv, "--kubeconfig", str(kubeconfig)])
    return code, capsys.readouterr().err


def test_missing_crd_then_another_version(
    bare_cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = bare_cluster.kubeconfig_path
    code, err = run(admin, capsys, "get", "upsell", "-n", "default")
    assert code == 1
    assert err == (
        "error: the ModelDeployment CRD (modeldeployments.rollforward.io) is not installed in"
        " this cluster; install the rollforward chart or `kubectl apply -f crds/`\n"
    )

    crd = yaml.safe_load(CRD_FILE.read_text())
    newer = copy.deepcopy(crd)
    newer["spec"]["versions"][0]["name"] = "v1beta1"
    path = tmp_path / "newer-crd.yaml"
    path.write_text(yaml.safe_dump(newer))
    bare_cluster.install_crds(tmp_path)

    for argv in (["get", "upsell"], ["list"], ["pause", "upsell"]):
        code, err = run(admin, capsys, *argv, "-n", "default")
        assert code == 1, argv
        assert err.startswith(
            "error: operator version mismatch: the cluster serves rollforward.io v1beta1,"
            " but this kubectl-rollforward"
        ), argv
        assert err.rstrip().endswith("speaks v1alpha1; install the matching plugin")
