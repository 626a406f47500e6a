"""A real kubelet, containerd, kube-proxy and CoreDNS run real containers, in a network
namespace of their own, and leave nothing behind.

Given the control plane and one real node inside a fresh network namespace,
when a Deployment, a Service and a Job of the busybox test image are created through the API,
then the containers run (init container and emptyDir included), the Service answers through
kube-proxy's rules, CoreDNS resolves its name from a pod, a Job's termination message reaches
its status, and stopping the node removes every process, mount, namespace, veth and cgroup.
"""

from __future__ import annotations

import subprocess
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
    # And the ClusterIP answers from inside the namespace, through kube-proxy's rules
    service = real_node.cluster.kubectl_json("get", "service", "web", "-n", namespace)
    url = f"http://{service['spec']['clusterIP']}/index.html"
    assert real_node.netns.call(lambda: _get(url)).strip() == PAGE


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


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _host_nat_rules() -> set[str]:
    out = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return set(out.splitlines())


def _host_paths() -> set[str]:
    """What exists under the host paths containerd and libcni write to by default."""
    roots = [Path("/run/containerd"), Path("/var/lib/cni"), Path("/var/log/containers")]
    return {str(p) for root in roots if root.exists() for p in [root, *root.rglob("*")]}


def test_stopping_the_node_leaves_nothing_behind(tmp_path: Path) -> None:
    links_before, nat_before, paths_before = _host_links(), _host_nat_rules(), _host_paths()
    # Given a node that ran a pod (so there are shims, veths, mounts and pod cgroups)
    node = RealNodeCluster(tmp_path / "node")
    with node:
        node.cluster.apply(web_deployment("default"))
        wait_until(lambda: _deployment_ready(node, "default"), 180, what="web Ready")
        running = node.leftovers()
        assert running.processes and running.mounts and running.netns and running.cgroups
        assert any(name.startswith("veth") for name in node.netns.interfaces())
    # When it is stopped (by the context manager)
    # Then no process, mount, namespace, cgroup, shim socket or CNI cache file is left
    left = node.leftovers()
    assert left.empty(), left
    # And the host's interfaces and NAT rules are what they were before
    assert _host_links() == links_before
    assert _host_nat_rules() == nat_before
    assert _host_paths() == paths_before
