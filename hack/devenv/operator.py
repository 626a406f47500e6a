"""Run the real operator (`rollforward run`) against the local cluster, under the chart's RBAC."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from devenv.cluster import REPO_ROOT, LocalCluster
from devenv.processes import ManagedProcess, free_port, wait_until

RBAC_RULES = REPO_ROOT / "charts" / "rollforward" / "files" / "rbac-rules.yaml"
OPERATOR_NAMESPACE = "rollforward-system"
OPERATOR_ACCOUNT = "rollforward"
IMAGE_ENV = {"MALLOC_ARENA_MAX": "2"}
"""What the operator's image and chart set in its environment beyond its settings
(images/operator/Dockerfile, charts/rollforward/templates/deployment.yaml), so the operator
started here allocates memory as it does in a cluster."""


def grant_operator_rbac(cluster: LocalCluster, workdir: Path) -> Path:
    """Create the operator's ServiceAccount bound to exactly the chart's rules; return a
    kubeconfig that authenticates as it."""
    rules = yaml.safe_load(RBAC_RULES.read_text())
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "rollforward-operator"},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "rollforward-operator"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "rollforward-operator",
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": OPERATOR_ACCOUNT,
                        "namespace": OPERATOR_NAMESPACE,
                    }
                ],
            },
        ]
    )
    return cluster.kubeconfig_for_service_account(
        OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, workdir / "operator.kubeconfig"
    )


class OperatorProcess:
    """`rollforward run` as a child process, with its /metrics on a free port.

    With `namespaces` it watches only those (so a namespace still being deleted by an earlier
    test does not show up in its metrics); else every namespace.
    """

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
    ) -> None:
        scope = [f"--namespace={ns}" for ns in namespaces] if namespaces else ["--all-namespaces"]
        self.metrics_port = free_port()
        self.log_path = workdir / "operator.log"
        self.process = ManagedProcess(
            name="operator",
            argv=[sys.executable, "-m", "rollforward.cli", "run", *scope],
            log_path=self.log_path,
            env={
                **os.environ,
                **IMAGE_ENV,
                "KUBECONFIG": str(kubeconfig),
                "ROLLFORWARD_METRICS_PORT": str(self.metrics_port),
                "ROLLFORWARD_HEALTH_PORT": "0",
                "ROLLFORWARD_RESYNC_SECONDS": "2",
                "PYTHONPATH": str(REPO_ROOT / "operator"),
                **(env or {}),
            },
        )

    def start(self) -> OperatorProcess:
        self.process.start()
        wait_until(self._metrics_answer, timeout=60, what="the operator's /metrics")
        return self

    def _metrics_answer(self) -> bool:
        self.metrics_text()
        return True

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text

    def counter(self, name: str) -> float:
        """Sum of a counter's samples over all label sets (0 before the first increment)."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()
