"""A real kubelet, containerd, kube-proxy and CoreDNS run real containers, in a network
namespace of their own, and leave nothing behind.

Given the control plane and one real node inside a fresh network namespace,
when a Deployment, a Service and a Job of the busybox test image are created through the API,
then the containers run (init container and emptyDir included), the Service answers through
kube-proxy's rules, CoreDNS resolves its name from a pod, a Job's termination message reaches
its status, and a Prometheus in the namespace discovers pods through the API server.
(test_real_node_teardown.py checks that stopping the node leaves nothing behind.)
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.node import RealNodeCluster
from devenv.node_config import NODE_NAME
from devenv.oci_image import BUSYBOX_IMAGE
from devenv.processes import wait_until

PAGE = "served-by-rollforward-node"


def web_deployment(namespace: str) -> dict[str, Any]:
    """httpd serving a page that an init container wrote into an emptyDir."""
    volume = {"name": "www", "mountPath": "/www"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{
                        "name": "page", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", f"echo {PAGE} > /www/index.html"],
                        "volumeMounts": [volume],
                    }],
                    "containers": [{
                        "name": "httpd", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080},
                                           "periodSeconds": 1},
                        "volumeMounts": [volume],
                    }],
                    "volumes": [{"name": "www", "emptyDir": {}}],
                },
            },
        },
    }  # fmt: skip


def web_service(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def fetch_job(namespace: str) -> dict[str, Any]:
    """Resolves the Service by name (CoreDNS) and reports what it got as its termination
    message, the channel the operator reads retraining results from."""
    script = (
        "nslookup web.$NS.svc.cluster.local > /tmp/dns && "
        "wget -qO- http://web/index.html > /dev/termination-log && "
        "grep -q Address /tmp/dns"
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "fetch", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "fetch", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "env": [{"name": "NS", "valueFrom": {
                        "fieldRef": {"fieldPath": "metadata.namespace"}}}],
                }],
            }},
        },
    }  # fmt: skip


@pytest.fixture
def namespace(real_node: RealNodeCluster) -> Iterator[str]:
    with real_node.cluster.temporary_namespace("node") as name:
        yield name


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def _first_answer(cluster: RealNodeCluster, url: str, timeout: float = 30) -> str:
    """The first body `url` returns from inside the node's namespace, within `timeout`."""
    answers: list[str] = []

    def answered() -> bool:
        answers.append(cluster.netns.call(lambda: _get(url)))
        return True

    wait_until(answered, timeout, interval=0.5, what=f"{url} to answer")
    return answers[0]


def _deployment_ready(cluster: RealNodeCluster, namespace: str) -> bool:
    status = cluster.cluster.kubectl_json("get", "deployment", "web", "-n", namespace)["status"]
    return bool(status.get("readyReplicas") == 2)


def test_deployment_runs_on_the_real_node_and_its_service_answers(
    real_node: RealNodeCluster, namespace: str
) -> None:
    # Given the busybox image imported into the node's containerd (never pulled)
    assert BUSYBOX_IMAGE in real_node.node.images()
    # When a Deployment with an init container and an emptyDir, and a Service, are applied
    real_node.cluster.apply([web_deployment(namespace), web_service(namespace)])
    wait_until(lambda: _deployment_ready(real_node, namespace), 180, what="web Ready")
    # Then both pods run on the real node, with addresses of the pod network
    pods = real_node.cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")
    assert {p["spec"]["nodeName"] for p in pods["items"]} == {NODE_NAME}
    assert all(p["status"]["podIP"].startswith("10.244.0.") for p in pods["items"])
    # And the ClusterIP answers from inside the namespace, through kube-proxy's rules.
    # kube-proxy programs the endpoints after the pods turn Ready, so the first answer may
    # take a moment; every answer must be the page.
    service = real_node.cluster.kubectl_json("get", "service", "web", "-n", namespace)
    url = f"http://{service['spec']['clusterIP']}/index.html"
    assert _first_answer(real_node, url).strip() == PAGE


def test_job_resolves_the_service_by_name_and_reports_a_termination_message(
    real_node: RealNodeCluster, namespace: str
) -> None:
    # Given a ready web Deployment behind a Service
    real_node.cluster.apply([web_deployment(namespace), web_service(namespace)])
    wait_until(lambda: _deployment_ready(real_node, namespace), 180, what="web Ready")
    # When a Job fetches http://web/ by name from a pod
    real_node.cluster.apply(fetch_job(namespace))
    real_node.kubectl("wait", "--for=condition=Complete", "job/fetch", "-n", namespace,
                      "--timeout=180s")  # fmt: skip
    # Then its termination message holds what the Service answered
    pods = real_node.cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "job-name=fetch")
    terminated = pods["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["message"].strip() == PAGE


def metrics_pod(namespace: str) -> dict[str, Any]:
    """httpd serving a fixed Prometheus text page, annotated for discovery."""
    page = "rollforward_node_test_up 1"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "metrics", "namespace": namespace, "annotations": {
            "prometheus.io/scrape": "true", "prometheus.io/port": "8080",
            "prometheus.io/path": "/metrics"}},
        "spec": {"containers": [{
            "name": "httpd", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c",
                        f"mkdir /tmp/www && echo '{page}' > /tmp/www/metrics && "
                        "exec httpd -f -p 8080 -h /tmp/www"],
        }]},
    }  # fmt: skip


def test_prometheus_in_the_namespace_discovers_pods_through_the_api_server(
    real_node: RealNodeCluster, namespace: str, tmp_path: Path
) -> None:
    # Given a Prometheus inside the node's namespace with a kubernetes_sd_configs job
    with real_node.prometheus(tmp_path / "prometheus") as prometheus:
        # When an annotated pod runs on the node
        real_node.cluster.apply(metrics_pod(namespace))
        query = f'rollforward_node_test_up{{namespace="{namespace}"}}'
        # Then its metric arrives, labelled with its namespace and pod
        wait_until(lambda: bool(prometheus.query(query)), 120, what="the pod's metric")
        labels = prometheus.query(query)[0]["metric"]
        assert (labels["namespace"], labels["pod"], labels["container"]) == (
            namespace,
            "metrics",
            "httpd",
        )
