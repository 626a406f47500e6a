"""The operator as a pod on the real node, installed by the real helm from charts/rollforward.

The chart's own Deployment, RBAC, securityContext and probes run the operator image that
`make images` built and the node imported (`imagePullPolicy: IfNotPresent`, nothing pulls).
Everything the dev environment differs in goes through chart values: the watched namespaces,
the default Prometheus, the bento and router images, the bento store, a short resync.

    release = install_operator(node.cluster, operator_values(["demo"], prometheus_url, store))
    release.wait_ready()
    print(release.logs())
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devenv.cluster import REPO_ROOT, ClusterBinaries, LocalCluster
from devenv.processes import wait_until

CHART = REPO_ROOT / "charts" / "rollforward"
RELEASE = "rollforward"
NAMESPACE = "rollforward-system"
# The chart's selector labels (templates/_helpers.tpl) for this release.
POD_SELECTOR = f"app.kubernetes.io/name=rollforward,app.kubernetes.io/instance={RELEASE}"
# The compressed loop of the demo needs a quicker level-based resync than the chart's 30 s.
RESYNC_SECONDS = 2


def app_version() -> str:
    """The chart's appVersion: the tag of every project image (hack/build-images.sh)."""
    text = (CHART / "Chart.yaml").read_text()
    found = re.search(r'^appVersion:\s*"?([^"\n]+)"?\s*$', text, re.MULTILINE)
    if found is None:
        raise ValueError("charts/rollforward/Chart.yaml has no appVersion")
    return found.group(1)


def operator_values(
    namespaces: Sequence[str],
    prometheus_url: str,
    bento_store: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Chart values for the dev environment: the project's images at the chart's appVersion
    (as `make images` tags them), the watched namespaces, the default Prometheus and the bento
    store (`{"bentoStore": {...}}`, e.g. `NodeStore.helm_values()`). Pure."""
    version = app_version()
    values: dict[str, Any] = {
        "image": {"pullPolicy": "IfNotPresent"},
        "watch": {"namespaces": list(namespaces)},
        "config": {
            "prometheusUrl": prometheus_url,
            "bentoImage": {"repository": "docker.io/rollforward/bento-runtime", "tag": version},
            "routerImage": {"repository": "docker.io/rollforward/router", "tag": version},
            "resyncSeconds": RESYNC_SECONDS,
        },
    }
    return {**values, **(bento_store or {})}


@dataclass(frozen=True)
class OperatorRelease:
    """The installed release: its pod's state and logs, through the admin kubeconfig."""

    cluster: LocalCluster
    namespace: str = NAMESPACE

    def pods(self) -> list[dict[str, Any]]:
        listed = self.cluster.kubectl_json("get", "pods", "-n", self.namespace, "-l", POD_SELECTOR)
        items: list[dict[str, Any]] = listed["items"]
        return items

    def ready(self) -> bool:
        pods = self.pods()
        return bool(pods) and all(_pod_ready(p) for p in pods)

    def wait_ready(self, timeout: float = 180.0) -> None:
        wait_until(self.ready, timeout, what="the operator pod to be Ready")

    def logs(self) -> str:
        """The operator container's log (of every pod of the release)."""
        result = self.cluster.kubectl(
            "logs", "-n", self.namespace, "-l", POD_SELECTOR, "-c", "operator",
            "--tail=-1", "--prefix", check=False,
        )  # fmt: skip
        return result.stdout + result.stderr

    def restarts(self) -> int:
        return sum(
            int(status.get("restartCount", 0))
            for pod in self.pods()
            for status in pod["status"].get("containerStatuses", [])
        )


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def install_operator(
    cluster: LocalCluster, values: Mapping[str, Any], workdir: Path
) -> OperatorRelease:
    """`helm install` the chart (CRDs included) into rollforward-system with `values`."""
    workdir.mkdir(parents=True, exist_ok=True)
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(dict(values), sort_keys=False))
    cluster.helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "--values", str(values_file),
    )  # fmt: skip
    return OperatorRelease(cluster)


def render_pod_monitor(values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The chart's bento PodMonitor, rendered by the real helm (`helm template`)."""
    argv = [str(ClusterBinaries.from_environment().path("helm")), "template", RELEASE,
            str(CHART), "-n", NAMESPACE, "--values", "-",
            "--set", "monitoring.podMonitor.enabled=true",
            "--show-only", "templates/podmonitor.yaml"]  # fmt: skip
    result = subprocess.run(
        argv, input=yaml.safe_dump(dict(values or {})), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr.strip()}")
    monitor: dict[str, Any] = yaml.safe_load(result.stdout)
    return monitor
