"""Every process of the demo and the e2e, on a real node: started in order, stopped in reverse.

- the control plane and one real node (containerd, kubelet, kube-proxy, CoreDNS) inside a
  network namespace of their own (`devenv.node`); `make images`' archives are imported into
  the node's containerd, so every pod runs a project image and nothing pulls;
- Prometheus inside that namespace, discovering bento pods through the API server
  (`kubernetes_sd_configs`) with the chart's PodMonitor relabelings, reachable from pods as
  the README example's `http://prometheus.monitoring.svc:9090` (a Service whose endpoint is
  Prometheus on the node's address);
- the bento store: versitygw on the node's address, holding `upsell:v1` and `upsell:v1-gbm`
  (trained while the node starts), with a credentials Secret in each namespace;
- the operator, a pod of its image installed by the real helm from charts/rollforward.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from devenv.api_cases import example_manifest
from devenv.bento import build_readme_bentos
from devenv.cluster import LocalCluster
from devenv.kube_api import KubeApi, KubeApiError
from devenv.node import RealNodeCluster
from devenv.node_store import NodeStore, running_node_store
from devenv.operator_chart import (
    OperatorRelease,
    app_version,
    install_operator,
    operator_values,
    render_pod_monitor,
)
from devenv.prometheus import LocalPrometheus
from devenv.scrape_config import pod_monitor_kubernetes_sd_config

GROUP_PATH = "/apis/rollforward.io/v1alpha1"
PROMETHEUS_PORT = 9090
# Rows each README bento trains on: enough for a stable training baseline of the champion,
# and few enough that the gradient-boosted challenger trains in about a minute on two cores.
BENTO_ROWS = 8000
BENTOS_JOB = "rollforward-bentos"


def project_images() -> list[str]:
    """The images `make images` builds, as the chart and the example name them."""
    version = app_version()
    return [
        f"ghcr.io/rollforward/operator:{version}",
        f"docker.io/rollforward/bento-runtime:{version}",
        f"docker.io/rollforward/upsell-trainer:{version}",
        f"docker.io/rollforward/router:{version}",
    ]


def example_prometheus() -> tuple[str, str]:
    """(namespace, name) of the Service the README example's prometheusUrl names."""
    url = str(example_manifest()["spec"]["monitoring"]["prometheusUrl"])
    host = url.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]
    name, namespace = host.split(".")[:2]
    return namespace, name


def prometheus_service(address: str, port: int) -> list[dict[str, Any]]:
    """A Service with no selector and its EndpointSlice: Prometheus at `address:port` (the
    node's address) under the example's `prometheus.monitoring.svc:9090`. Pure."""
    namespace, name = example_prometheus()
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": PROMETHEUS_PORT, "targetPort": port}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-node",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        },
    ]


def prometheus_url() -> str:
    namespace, name = example_prometheus()
    return f"http://{name}.{namespace}.svc:{PROMETHEUS_PORT}"


class MissingImagesError(RuntimeError):
    """The node's containerd lacks a project image: `make images` was not run."""


class DemoEnvironment:
    """The real node, Prometheus, the bento store and the operator pod (see the module doc)."""

    def __init__(self, workdir: Path, namespaces: Sequence[str], say: Callable[[str], None]):
        self.workdir = workdir
        self.namespaces = list(namespaces)
        self.say = say
        self._stack = contextlib.ExitStack()
        self.node: RealNodeCluster
        self.cluster: LocalCluster
        self.prometheus: LocalPrometheus
        self.store: NodeStore
        self.operator: OperatorRelease
        self.api: KubeApi
        self.bentoml_home = workdir / "bentoml"
        self.bentos: list[str] = []

    def __enter__(self) -> DemoEnvironment:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.say("tearing down: bento store, Prometheus, the node (every pod) and control plane")
        self._stack.close()

    def _start(self) -> None:
        began = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="bentos") as pool:
            # Training takes as long as the node's start: both at once.
            self.say("training upsell:v1 and upsell:v1-gbm on `baseline` data (make bentos)")
            building = pool.submit(build_readme_bentos, self.bentoml_home, rows=BENTO_ROWS)
            self._start_node()
            self._start_prometheus()
            self.bentos = building.result()
        self.say(f"built {', '.join(self.bentos)}; pushing them to the S3 bento store")
        self.store = self._stack.enter_context(
            running_node_store(self.node, self.bentoml_home, self.bentos)
        )
        for namespace in self.namespaces:
            self.cluster.apply(self.store.secret(namespace))
        self._install_operator()
        self.say(f"environment up in {time.monotonic() - began:.0f} s")

    def _start_node(self) -> None:
        self.say("starting the control plane and a real node (containerd, kubelet, kube-proxy,")
        self.say("  CoreDNS) in a network namespace; importing _out/images/*.oci.tar")
        self.node = self._stack.enter_context(RealNodeCluster(self.workdir / "node"))
        self.cluster = self.node.cluster
        missing = sorted(set(project_images()) - set(self.node.node.images()))
        if missing:
            raise MissingImagesError(f"not in the node's containerd: {missing}; `make images`")
        for namespace in self.namespaces:
            self.cluster.kubectl("create", "namespace", namespace)
            self.cluster.wait_for_service_account(namespace, "default")
        self.api = KubeApi(self.cluster.kubeconfig_path, self.workdir / "credentials")

    def _start_prometheus(self) -> None:
        self.say("starting Prometheus in the node's namespace: kubernetes_sd_configs with the")
        self.say("  chart's PodMonitor relabelings, 1 s scrapes")
        monitor = render_pod_monitor({"watch": {"namespaces": self.namespaces}})
        scrape = pod_monitor_kubernetes_sd_config(
            monitor, BENTOS_JOB, self.cluster.server_url, self.node.kubernetes_sd_tls()
        )
        self.prometheus = self._stack.enter_context(
            self.node.prometheus(self.workdir / "prometheus", [scrape])
        )
        self.cluster.apply(prometheus_service(self.node.netns.node_ip, self.prometheus.port))

    def _install_operator(self) -> None:
        self.say("helm install rollforward charts/rollforward (the operator pod, its RBAC)")
        values = operator_values(self.namespaces, prometheus_url(), self.store.helm_values())
        self.operator = install_operator(self.cluster, values, self.workdir / "operator")
        self.operator.wait_ready()

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            body = self.api.get(f"{GROUP_PATH}/namespaces/{namespace}/modeldeployments/{name}")
        except KubeApiError:
            return {}
        status: dict[str, Any] = body.get("status") or {}
        return status

    def job_names(self, namespace: str) -> list[str]:
        items = self.api.items(f"/apis/batch/v1/namespaces/{namespace}/jobs")
        return sorted(str(j["metadata"]["name"]) for j in items)

    def pods_wide(self, namespace: str) -> str:
        """`kubectl get pods -o wide` of `namespace`, as a person would run it."""
        result = self.cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False)
        return (result.stdout or result.stderr).rstrip()

    def service_address(self, namespace: str, name: str) -> str:
        """`clusterIP:port` of a Service, reachable only inside the node's namespace."""
        service = self.cluster.kubectl_json("get", "service", name, "-n", namespace)
        port = service["spec"]["ports"][0]["port"]
        return f"{service['spec']['clusterIP']}:{port}"
