"""The local control plane, Prometheus and Helm behave like the real things the operator meets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from devenv.cluster import REPO_ROOT, KubectlError, LocalCluster
from devenv.processes import (
    ManagedProcess,
    ProcessStartError,
    free_port,
    port_is_open,
    wait_until,
)
from devenv.prometheus import LocalPrometheus

SMOKE_CHART = REPO_ROOT / "tests" / "data" / "charts" / "smoke"


def deployment(name: str, replicas: int, pod_labels: dict[str, str] | None = None) -> str:
    labels = {"app": name, **(pod_labels or {})}
    return json.dumps({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/model:1"}]},
            },
        },
    })  # fmt: skip


def job(name: str, labels: dict[str, str], annotations: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "train", "image": "example.invalid/train:1"}],
                },
            },
        },
    })  # fmt: skip


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def exists(cluster: LocalCluster, *args: str) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode == 0


# --- nodes and workloads -------------------------------------------------------------------


def test_at_least_three_nodes_are_ready(local_cluster: LocalCluster) -> None:
    nodes = local_cluster.kubectl_json("get", "nodes")["items"]

    assert len(nodes) >= 3
    assert [condition(n, "Ready") for n in nodes] == ["True"] * len(nodes)


def test_a_deployment_becomes_available(
    local_cluster: LocalCluster, cluster_namespace: str
) -> None:
    local_cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=deployment("web", 3))

    local_cluster.kubectl(
        "wait", "-n", cluster_namespace, "--for=condition=Available", "deployment/web",
        "--timeout=120s",
    )  # fmt: skip

    status = local_cluster.kubectl_json("get", "-n", cluster_namespace, "deployment/web")["status"]
    assert status["readyReplicas"] == 3
    pods = local_cluster.kubectl_json("get", "pods", "-n", cluster_namespace, "-l", "app=web")
    assert {p["spec"]["nodeName"] for p in pods["items"]} <= {
        n["metadata"]["name"] for n in local_cluster.kubectl_json("get", "nodes")["items"]
    }


def test_pods_labelled_to_fail_readiness_run_but_never_become_ready(
    local_cluster: LocalCluster, cluster_namespace: str
) -> None:
    manifest = deployment("broken", 2, {"rollforward.io/test-fail-ready": "true"})
    local_cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=manifest)

    def pods() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = local_cluster.kubectl_json(
            "get", "pods", "-n", cluster_namespace, "-l", "app=broken"
        )["items"]
        return items

    # Running with an IP means kwok has played its stage for the pod; no later stage
    # makes a Running pod Ready, so what we see now is final.
    wait_until(
        lambda: (
            len(pods()) == 2
            and all(
                p["status"].get("phase") == "Running" and p["status"].get("podIP") for p in pods()
            )
        ),
        120,
        what="the broken pods to run",
    )
    assert [condition(p, "Ready") for p in pods()] == ["False", "False"]
    status = local_cluster.kubectl_json("get", "-n", cluster_namespace, "deployment/broken")
    assert status["status"].get("availableReplicas", 0) == 0


def test_job_pods_finish_with_the_requested_outcome_and_termination_message(
    local_cluster: LocalCluster, cluster_namespace: str
) -> None:
    message = json.dumps({"accuracy": 0.93, "note": 'a "quoted" word'})
    ok = job("train-ok", {}, {"rollforward.io/test-termination-message": message})
    failing = job("train-fails", {"rollforward.io/test-fail-job": "true"}, {})
    local_cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=ok)
    local_cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=failing)

    for name, outcome in (("train-ok", "Complete"), ("train-fails", "Failed")):
        local_cluster.kubectl(
            "wait", "-n", cluster_namespace, f"--for=condition={outcome}", f"job/{name}",
            "--timeout=120s",
        )  # fmt: skip

    pod = local_cluster.kubectl_json(
        "get", "pods", "-n", cluster_namespace, "-l", "job-name=train-ok"
    )
    terminated = pod["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert json.loads(terminated["message"]) == json.loads(message)


# --- garbage collection and RBAC -----------------------------------------------------------


def test_deleting_an_owner_garbage_collects_its_children(
    local_cluster: LocalCluster, cluster_namespace: str
) -> None:
    ns = cluster_namespace
    local_cluster.kubectl("create", "configmap", "owner", "-n", ns)
    owner_uid = local_cluster.kubectl_json("get", "configmap", "owner", "-n", ns)["metadata"]["uid"]
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
            ],
        },
    }
    local_cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(child))
    local_cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment("web", 2))
    local_cluster.kubectl("wait", "-n", ns, "--for=condition=Available", "deployment/web")
    assert exists(local_cluster, "configmap", "child", "-n", ns)

    local_cluster.kubectl("delete", "configmap", "owner", "-n", ns)
    local_cluster.kubectl("delete", "deployment", "web", "-n", ns)

    wait_until(
        lambda: not exists(local_cluster, "configmap", "child", "-n", ns),
        120,
        what="the child ConfigMap to be collected",
    )

    def workload_left() -> list[Any]:
        items: list[Any] = local_cluster.kubectl_json(
            "get", "replicasets,pods", "-n", ns, "-l", "app=web"
        )["items"]
        return items

    wait_until(lambda: workload_left() == [], 120, what="the ReplicaSet and pods to be collected")


def test_a_service_account_is_denied_without_a_role_binding_and_allowed_with_one(
    local_cluster: LocalCluster, cluster_namespace: str, tmp_path: Path
) -> None:
    ns = cluster_namespace
    local_cluster.kubectl("create", "serviceaccount", "reader", "-n", ns)
    kubeconfig = local_cluster.kubeconfig_for_service_account(ns, "reader", tmp_path / "reader")

    with pytest.raises(KubectlError) as denied:
        local_cluster.kubectl("get", "configmaps", "-n", ns, kubeconfig=kubeconfig)
    assert "forbidden" in denied.value.stderr.lower()
    assert f"system:serviceaccount:{ns}:reader" in denied.value.stderr

    local_cluster.kubectl(
        "create", "role", "read-configmaps", "-n", ns, "--verb=get,list", "--resource=configmaps"
    )
    local_cluster.kubectl(
        "create", "rolebinding", "reader-reads", "-n", ns, "--role=read-configmaps",
        f"--serviceaccount={ns}:reader",
    )  # fmt: skip

    def allowed() -> bool:
        result = local_cluster.kubectl(
            "get", "configmaps", "-n", ns, kubeconfig=kubeconfig, check=False
        )
        return result.returncode == 0

    wait_until(allowed, 60, what="the RoleBinding to take effect")
    # The binding grants exactly what it names: other verbs and namespaces stay forbidden.
    with pytest.raises(KubectlError):
        local_cluster.kubectl("create", "configmap", "x", "-n", ns, kubeconfig=kubeconfig)
    with pytest.raises(KubectlError):
        local_cluster.kubectl("get", "configmaps", "-n", "default", kubeconfig=kubeconfig)


# --- Helm ----------------------------------------------------------------------------------


def test_helm_installs_the_smoke_chart(local_cluster: LocalCluster, cluster_namespace: str) -> None:
    ns = cluster_namespace

    local_cluster.helm(
        "install", "demo", str(SMOKE_CHART), "-n", ns, "--set", "greeting=hi there",
        "--wait", "--timeout=3m",
    )  # fmt: skip

    configmap = local_cluster.kubectl_json("get", "configmap", "demo-smoke", "-n", ns)
    assert configmap["data"]["greeting"] == "hi there"
    status = local_cluster.kubectl_json("get", "deployment", "demo-smoke", "-n", ns)["status"]
    assert status["readyReplicas"] == 2
    releases = json.loads(local_cluster.helm("list", "-n", ns, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("demo", "deployed")]


# --- Prometheus ----------------------------------------------------------------------------


@pytest.fixture
def metrics_endpoint() -> Iterator[tuple[str, Counter]]:
    """A /metrics endpoint served in-process on a free loopback port."""
    registry = CollectorRegistry()
    counter = Counter("smoke_requests", "Requests the smoke target has seen.", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}", counter
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_prometheus_scrapes_a_target_added_at_run_time(
    local_prometheus: LocalPrometheus, metrics_endpoint: tuple[str, Counter]
) -> None:
    address, counter = metrics_endpoint
    counter.inc(7)

    local_prometheus.add_target("smoke", address, {"variant": "challenger"})

    local_prometheus.wait_for_target_up("smoke", address)
    wait_until(
        lambda: local_prometheus.query_value(f'smoke_requests_total{{instance="{address}"}}') == 7,
        60,
        what="the scraped sample",
    )
    series = local_prometheus.query(f'smoke_requests_total{{instance="{address}"}}')
    assert series[0]["metric"]["job"] == "smoke"
    assert series[0]["metric"]["variant"] == "challenger"

    local_prometheus.remove_target("smoke", address)
    wait_until(
        lambda: all(t["labels"]["instance"] != address for t in local_prometheus.active_targets()),
        60,
        what="the removed target to be dropped",
    )


def test_prometheus_keeps_its_data_across_a_restart(
    fresh_prometheus: LocalPrometheus, metrics_endpoint: tuple[str, Counter]
) -> None:
    address, counter = metrics_endpoint
    counter.inc(3)
    fresh_prometheus.add_target("restart", address)
    query = f'smoke_requests_total{{instance="{address}"}}'
    wait_until(lambda: fresh_prometheus.query_value(query) == 3, 60, what="a first sample")
    url = fresh_prometheus.url

    fresh_prometheus.stop()
    assert not port_is_open(fresh_prometheus.port)
    fresh_prometheus.start()

    assert fresh_prometheus.url == url
    assert fresh_prometheus.query_value(f"max_over_time({query}[10m])") == 3


# --- teardown ------------------------------------------------------------------------------


def processes_mentioning(directory: Path) -> list[int]:
    """Pids whose command line names `directory`: every component is started with paths in it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if str(directory).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stopping_a_cluster_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    base = tmp_path / "cluster"
    with LocalCluster(base) as cluster:
        pids = [p.pid for p in cluster.processes]
        ports = list(cluster.ports.values())
        assert all(
            port_is_open(port) for port in (cluster.ports["apiserver"], cluster.ports["etcd"])
        )
        assert set(pids) <= set(processes_mentioning(base))

    assert [pid for pid in pids if not group_is_gone(pid)] == []
    assert processes_mentioning(base) == []
    assert [port for port in ports if port_is_open(port)] == []


def test_cluster_up_and_down_commands_leave_nothing_behind(tmp_path: Path) -> None:
    base = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'operator'}:{REPO_ROOT / 'hack'}"}
    command = [sys.executable, "-m", "devenv.cluster"]

    up = subprocess.run([*command, "up", "--dir", str(base)], env=env, capture_output=True,
                        text=True, timeout=600, check=False)  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        kubeconfig = base / "kubeconfigs" / "admin.kubeconfig"
        assert f"export KUBECONFIG={kubeconfig}" in up.stdout
        state = json.loads((base / "state.json").read_text())
        # The components outlive the command that started them, as `make cluster-up` needs.
        assert all(not group_is_gone(p["pid"]) for p in state["processes"])
    finally:
        down = subprocess.run([*command, "down", "--dir", str(base)], env=env,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        for pid in processes_mentioning(base):  # only if `down` failed: never leak into CI
            os.killpg(pid, signal.SIGKILL)

    assert down.returncode == 0, down.stderr
    assert "kube-apiserver" in down.stdout
    assert processes_mentioning(base) == []
    assert not (base / "state.json").exists()


def test_stopping_prometheus_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    with LocalPrometheus(tmp_path / "prometheus") as prometheus:
        assert prometheus.process is not None
        pid = prometheus.process.pid
        assert port_is_open(prometheus.port)

    assert group_is_gone(pid)
    assert not port_is_open(prometheus.port)


def test_a_killed_test_run_takes_its_cluster_down_with_it(tmp_path: Path) -> None:
    base = tmp_path / "cluster"
    starter = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from devenv.cluster import LocalCluster\n"
        f"LocalCluster(Path({str(base)!r})).start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'operator'}:{REPO_ROOT / 'hack'}"}
    run = subprocess.Popen([sys.executable, "-c", starter], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready", run.stderr.read() if run.stderr else ""
        components = set(processes_mentioning(base)) - {run.pid}
        assert len(components) == 5

        run.kill()  # as pytest-timeout's thread method or an OOM kill would
        run.wait(timeout=30)

        wait_until(
            lambda: not components & set(processes_mentioning(base)), 60, what="orphans to die"
        )
    finally:
        run.kill()
        for pid in processes_mentioning(base):
            os.killpg(pid, signal.SIGKILL)


def test_a_component_that_dies_at_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    crashing = ManagedProcess(
        "crashing", ["sh", "-c", "echo 'listen tcp: address already in use' >&2; exit 1"],
        tmp_path / "crashing.log",
    ).start()  # fmt: skip

    with pytest.raises(ProcessStartError) as error:
        crashing.wait_until_ready(lambda: False, timeout=60)

    assert "crashing exited before it was ready" in str(error.value)
    assert "address already in use" in str(error.value)
    crashing.stop()
