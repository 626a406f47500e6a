"""The local pod runner against a real control plane: pods bound to its node really run.

Given a cluster with no kwok node and the runner as its only node's kubelet,
when Deployments, Jobs and a router are created through the API,
then their containers run as local processes, their status is what a kubelet would report,
Prometheus scrapes them, nginx routes between them, and deleting them leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from devenv.pod_runner import (
    RUNNER_NODE,
    SCRAPE_JOB,
    PodRunner,
    read_service_address,
    read_service_addresses,
)
from devenv.processes import ManagedProcess, port_is_open, wait_until
from devenv.prometheus import LocalPrometheus
from devenv.traffic import TrafficDriver, TrafficPlan, read_log, sticky_violations
from rollforward.api import ModelDeployment
from rollforward.builders import owner_reference, variant_deployment, variant_service
from rollforward.feedback_key import secret_manifest
from rollforward.naming import LABEL_MODEL_DEPLOYMENT, router_name
from rollforward.observed import Observed
from rollforward.routers.nginx import NginxRouter
from rollforward.routers.nginx_config import NginxRouterConfig, RoutedVariant, render_nginx_config
from rollforward.serving.contract import RetrainingResult
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedRole, ServedVariant
from upsell.generator import records as soom_records

TESTS = Path(__file__).resolve().parents[1]
ECHO_SERVER = TESTS / "fixtures" / "echo_server.py"
PYTHONPATH = [str(TESTS.parent / p) for p in ("operator", "bentos", "hack")]
SERVED_BY = "X-Rollforward-Variant"
TIMEOUT = 120.0


def echo_deployment(
    namespace: str, name: str, replicas: int = 1, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A Deployment shaped like the operator's bento Deployments, running the echo server."""
    labels = {"app": name, "rollforward.io/variant": name}
    variables: list[dict[str, Any]] = [{"name": "ECHO_NAME", "value": name}]
    variables += [{"name": k, "value": v} for k, v in (env or {}).items()]
    variables.append(
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": "3000",
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "rollforward/echo:latest",
                            # -P: hack/devenv on sys.path would shadow the stdlib
                            # (devenv/operator.py vs `operator`).
                            "command": ["python", "-P", str(ECHO_SERVER)],
                            "args": ["--host", "0.0.0.0", "--port", "3000"],
                            "env": variables,
                            "ports": [{"name": "http", "containerPort": 3000}],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 2,
                            },
                        }
                    ]
                },
            },
        },
    }


def service(namespace: str, name: str, selector: Mapping[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }


def job(namespace: str, name: str, code: str) -> dict[str, Any]:
    """A Job whose pod runs `python -c CODE` once, with no retries."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "train", "image": "rollforward/trainer:latest",
                         "command": ["python", "-c", code]},
                    ],
                }
            },
        },
    }  # fmt: skip


def pods(cluster: LocalCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", selector
    )["items"]
    return found


def is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_ready(cluster: LocalCluster, namespace: str, selector: str, count: int) -> list[Any]:
    def ready() -> bool:
        found = pods(cluster, namespace, selector)
        return len(found) == count and all(map(is_ready, found))

    wait_until(ready, TIMEOUT, what=f"{count} ready pods {selector} in {namespace}")
    return pods(cluster, namespace, selector)


def get_json(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, None, error.headers


def post_json(url: str, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    wanted = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=wanted, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_runner_is_a_ready_node_of_its_own(
    runner_cluster: LocalCluster, pod_runner: PodRunner
) -> None:
    nodes = runner_cluster.kubectl_json("get", "nodes")["items"]

    assert [n["metadata"]["name"] for n in nodes] == [RUNNER_NODE]
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    # kwok leaves the node alone: it carries none of kwok's annotations.
    assert not any("kwok" in key for key in nodes[0]["metadata"].get("annotations", {}))


def test_deployment_pods_run_with_their_env_get_ready_and_are_scraped(
    runner_cluster: LocalCluster,
    pod_runner: PodRunner,
    local_prometheus: LocalPrometheus,
    runner_namespace: str,
) -> None:
    # Given a Deployment of two replicas whose pods declare port 3000 and a readiness probe
    runner_cluster.apply(
        echo_deployment(runner_namespace, "champion", 2, {"ROLLFORWARD_VARIANT": "champion"})
    )

    # When the runner runs them
    ready = wait_ready(runner_cluster, runner_namespace, "app=champion", 2)

    # Then each pod is Running and Ready on the runner's node, with its own local port,
    # serving with the environment its spec declares
    addresses = set()
    for pod in ready:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == RUNNER_NODE
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"] == "127.0.0.1"
        assert "running" in pod["status"]["containerStatuses"][0]["state"]
        address = pod_runner.pod_address(runner_namespace, name, "http")
        assert address is not None
        addresses.add(address)
        status, body, _ = get_json(f"http://{address}/whoami")
        assert status == 200
        assert body["name"] == "champion"
        assert body["pod"] == name
        assert body["env"]["POD_NAME"] == name
        assert body["env"]["ROLLFORWARD_VARIANT"] == "champion"
    assert len(addresses) == 2

    # And Prometheus scrapes both, labelled with the pod's namespace, name and labels
    for address in addresses:
        local_prometheus.wait_for_target_up(SCRAPE_JOB, address, timeout=TIMEOUT)
    query = f'up{{namespace="{runner_namespace}",pod=~"champion-.*"}}'
    wait_until(
        lambda: len(local_prometheus.query(query)) == 2, TIMEOUT, what=f"two series of {query}"
    )
    scraped = {s["metric"]["pod"] for s in local_prometheus.query(query)}
    assert scraped == {p["metadata"]["name"] for p in ready}


def test_deleting_a_deployment_stops_its_processes_and_frees_its_ports(
    runner_cluster: LocalCluster,
    pod_runner: PodRunner,
    local_prometheus: LocalPrometheus,
    runner_namespace: str,
) -> None:
    # Given a running, scraped Deployment
    runner_cluster.apply(echo_deployment(runner_namespace, "doomed", 2))
    ready = wait_ready(runner_cluster, runner_namespace, "app=doomed", 2)
    addresses = [
        pod_runner.pod_address(runner_namespace, p["metadata"]["name"], 3000) for p in ready
    ]
    assert all(addresses)
    pids = pod_runner.process_ids()
    assert all(map(process_alive, pids))
    ports = [int(str(a).rsplit(":", 1)[1]) for a in addresses]
    assert all(map(port_is_open, ports))

    # When the Deployment is deleted (the kubelet's part: stop, then remove the pods)
    runner_cluster.kubectl("delete", "deployment", "doomed", "-n", runner_namespace)
    wait_until(
        lambda: not pods(runner_cluster, runner_namespace, "app=doomed"),
        TIMEOUT,
        what="the pods to be removed",
    )

    # Then their processes are gone, their ports closed and their scrape targets removed
    remaining = set(pod_runner.process_ids())
    stopped = [pid for pid in pids if pid not in remaining]
    assert len(stopped) >= 2
    assert not any(map(process_alive, stopped))
    assert not any(map(port_is_open, ports))
    wait_until(
        lambda: (
            not {t["labels"].get("instance") for t in local_prometheus.active_targets()}
            & set(map(str, addresses))
        ),
        30,
        what="the scrape targets to go",
    )


def test_a_job_completes_with_its_exit_code_and_termination_message(
    runner_cluster: LocalCluster, pod_runner: PodRunner, runner_namespace: str
) -> None:
    # Given a Job whose command writes a result where the runner says the message goes
    code = (
        "import json, os, pathlib;"
        "path = pathlib.Path(os.environ['ROLLFORWARD_TERMINATION_MESSAGE_PATH']);"
        "path.write_text(json.dumps({'version': 'soom-upsell:v2', 'accepted': True}))"
    )
    runner_cluster.apply(job(runner_namespace, "retrain-ok", code))

    # When it runs to completion
    runner_cluster.kubectl(
        "wait", "--for=condition=Complete", "job/retrain-ok", "-n", runner_namespace,
        f"--timeout={TIMEOUT:.0f}s",
    )  # fmt: skip

    # Then its pod reports Succeeded, exit code 0 and the message, as the operator reads them
    [pod] = pods(runner_cluster, runner_namespace, "job-name=retrain-ok")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert json.loads(terminated["message"]) == {"version": "soom-upsell:v2", "accepted": True}


def test_a_failing_job_fails_with_the_real_exit_code(
    runner_cluster: LocalCluster, pod_runner: PodRunner, runner_namespace: str
) -> None:
    # Given a Job whose command reports why and exits 3
    code = (
        "import os, pathlib, sys;"
        "pathlib.Path(os.environ['ROLLFORWARD_TERMINATION_MESSAGE_PATH']).write_text('no data');"
        "sys.exit(3)"
    )
    runner_cluster.apply(job(runner_namespace, "retrain-bad", code))

    # When it runs
    runner_cluster.kubectl(
        "wait", "--for=condition=Failed", "job/retrain-bad", "-n", runner_namespace,
        f"--timeout={TIMEOUT:.0f}s",
    )  # fmt: skip

    # Then the pod failed with exit code 3 and the message
    [pod] = pods(runner_cluster, runner_namespace, "job-name=retrain-bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert terminated["message"] == "no data"


def router_objects(namespace: str, config_text: str) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and Service of a router, shaped as the operator builds them."""
    labels = {"app": "router"}
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "router", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27-alpine",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": probe,
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/nginx.conf",
                                          "subPath": "nginx.conf", "readOnly": True}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "router"}}],
                },
            },
        },
    }  # fmt: skip
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "router", "namespace": namespace},
        "data": {"nginx.conf": config_text},
    }
    return [config_map, deployment, service(namespace, "router", labels, 80)]


def test_a_router_pod_runs_nginx_routing_to_the_services_local_pods(
    runner_cluster: LocalCluster, pod_runner: PodRunner, runner_namespace: str, tmp_path: Path
) -> None:
    # Given two variants behind their Services, and the operator's kind of router config
    # addressing them by cluster DNS name
    ns = runner_namespace
    for variant in ("champion", "challenger"):
        runner_cluster.apply(echo_deployment(ns, variant))
        runner_cluster.apply(service(ns, variant, {"app": variant}, 3000))
    config = NginxRouterConfig(
        listen_port=8080,
        sticky_header="X-User-Id",
        pin_header="X-Rollforward-Pin",
        champion="champion",
        variants=(
            RoutedVariant(name="challenger", weight=50, upstream=f"challenger.{ns}.svc:3000"),
            RoutedVariant(name="champion", weight=50, upstream=f"champion.{ns}.svc:3000"),
        ),
    )
    for variant in ("champion", "challenger"):
        wait_ready(runner_cluster, ns, f"app={variant}", 1)

    # When the router's ConfigMap, Deployment and Service are created
    runner_cluster.apply(router_objects(ns, render_nginx_config(config)))
    wait_ready(runner_cluster, ns, "app=router", 1)
    router = pod_runner.service_address(ns, "router")

    # Then nginx answers through the Service, each request served by the variant it names
    served = set()
    for user in range(40):
        status, body, headers = get_json(f"http://{router}/predict", {"X-User-Id": f"u{user}"})
        assert status == 200
        assert body["name"] == headers[SERVED_BY]
        served.add(body["name"])
    assert served == {"champion", "challenger"}

    # And the Service's address outlives the router pod: traffic keeps flowing, every request
    # answered, while the pod is replaced (as the operator rolls it on every new split)
    [old] = pods(runner_cluster, ns, "app=router")
    log = tmp_path / "traffic.jsonl"
    plan = TrafficPlan(url=f"http://{router}", rate=20, duration_seconds=600, users=50)
    driver = TrafficDriver(plan, log).start()
    runner_cluster.kubectl("rollout", "restart", "deployment/router", "-n", ns)
    runner_cluster.kubectl("rollout", "status", "deployment/router", "-n", ns, "--timeout=120s")
    wait_until(
        lambda: (
            [p["metadata"]["name"] for p in pods(runner_cluster, ns, "app=router")]
            not in ([], [old["metadata"]["name"]])
        ),
        TIMEOUT,
        what="the old router pod to be replaced",
    )
    wait_until(lambda: len(pods(runner_cluster, ns, "app=router")) == 1, TIMEOUT, what="one pod")
    sent = driver.stats.sent
    wait_until(lambda: driver.stats.completed >= sent + 20, TIMEOUT, what="traffic after it")
    driver.stop()
    records = read_log(log)
    assert {r.status for r in records} == {200}, [r.error for r in records if r.error][:5]

    # And when the challenger's pods go away, nginx is re-pointed: pinned requests get 502
    runner_cluster.kubectl("delete", "deployment", "challenger", "-n", ns)
    wait_until(
        lambda: get_json(f"http://{router}/predict", {"X-Rollforward-Pin": "challenger"})[0] == 502,
        TIMEOUT,
        what="the router to lose the challenger's endpoint",
    )
    status, body, headers = get_json(f"http://{router}/predict", {"X-Rollforward-Pin": "champion"})
    assert (status, body["name"]) == (200, "champion")


def test_a_crashing_container_is_restarted_with_a_count(
    runner_cluster: LocalCluster, pod_runner: PodRunner, runner_namespace: str
) -> None:
    # Given a bare pod whose command exits at once, under restartPolicy Always
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crasher", "namespace": runner_namespace},
        "spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "c", "image": "x", "command": ["python", "-c", "exit(2)"]}],
        },
    }
    runner_cluster.apply(pod)

    # Then the runner restarts it and reports the restarts and the last exit code
    def restarted() -> bool:
        found = runner_cluster.kubectl_json("get", "pod", "crasher", "-n", runner_namespace)
        statuses = found.get("status", {}).get("containerStatuses") or [{}]
        return int(statuses[0].get("restartCount", 0)) >= 2

    wait_until(restarted, TIMEOUT, what="two restarts")
    found = runner_cluster.kubectl_json("get", "pod", "crasher", "-n", runner_namespace)
    status = found["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert found["status"]["phase"] == "Running"


def operator_manifests(namespace: str, bento: str) -> tuple[ModelDeployment, list[dict[str, Any]]]:
    """What the operator would create for the README example serving `bento` in two variants
    (90/10): its own builders' Deployments, Services and nginx router. Owner references are
    dropped, since no ModelDeployment exists here and the garbage collector would delete them."""
    manifest = example_manifest()
    manifest["metadata"].update(namespace=namespace, uid="00000000-0000-0000-0000-000000000000")
    deployment = ModelDeployment.model_validate(manifest)
    served = [
        ServedVariant(name, ServedRole(role), bento, bento, None, 1, weight, None)
        for name, role, weight in (("champion", "champion", 90), ("challenger", "challenger", 10))
    ]
    settings = OperatorSettings()
    objects = [
        builder
        for variant in served
        for builder in (
            variant_deployment(deployment, variant, settings),
            variant_service(deployment, variant),
        )
    ]
    objects += NginxRouter().plan(deployment, served, settings, Observed()).objects
    # The feedback key the operator creates first; the runner reads it as a kubelet would.
    key = secrets.token_urlsafe(32)
    objects.insert(0, secret_manifest(deployment, key, owner_reference(deployment)))
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)
    # As the API client sends them: JSON (a StrEnum such as ServedRole is a plain string there).
    plain: list[dict[str, Any]] = json.loads(json.dumps(objects))
    return deployment, plain


def test_the_operators_bento_and_router_pods_serve_soom_traffic_and_are_scraped(
    runner_cluster: LocalCluster,
    pod_runner: PodRunner,
    local_prometheus: LocalPrometheus,
    runner_namespace: str,
    runner_soom_bento: str,
    tmp_path: Path,
) -> None:
    # Given the operator's own manifests for two variants of the real Soom bento and a router
    ns = runner_namespace
    deployment, objects = operator_manifests(ns, runner_soom_bento)
    name = deployment.metadata.name

    # When they are applied and the runner runs their pods
    runner_cluster.apply(objects)
    selector = f"{LABEL_MODEL_DEPLOYMENT}={name}"
    wait_ready(runner_cluster, ns, selector, 3)

    # Then Soom traffic through the router's Service is predicted by both variants
    router = pod_runner.service_address(ns, router_name(name))
    log = tmp_path / "traffic.jsonl"
    plan = TrafficPlan(url=f"http://{router}", rate=50, max_requests=150, users=100)
    TrafficDriver(plan, log).run()
    records = read_log(log)
    assert len(records) == 150
    assert all(r.status == 200 for r in records), {r.error for r in records}
    assert {r.variant for r in records} == {"champion", "challenger"}
    assert {r.label for r in records} <= {"upgrade", "stay"}
    assert sticky_violations(records, "champion") == []

    # And Prometheus scrapes each variant's predictions, labelled by pod and namespace
    query = f'sum by (variant) (rollforward_predictions_total{{namespace="{ns}"}})'

    def both_counted() -> bool:
        counted = {
            s["metric"]["variant"]: float(s["value"][1]) for s in local_prometheus.query(query)
        }
        served = Counter(r.variant for r in records)
        return counted == {variant: float(n) for variant, n in served.items()}

    wait_until(both_counted, TIMEOUT, what=f"Prometheus to count every prediction ({query})")

    # And a prediction id issued by the champion is accepted as feedback by the challenger
    # (both read the one key from the Secret), while a forged one is rejected
    champion_pin, challenger_pin = ({"X-Rollforward-Pin": v} for v in ("champion", "challenger"))
    record = next(soom_records("baseline", 1, seed=5))
    status, prediction = post_json(f"http://{router}/predict", record, champion_pin)
    assert status == 200, prediction
    item = {"predictionId": prediction["predictionId"], "label": prediction["label"]}
    forged = {"predictionId": "0123456789abcdef.upgrade.0123456789ab", "label": "upgrade"}
    status, answer = post_json(f"http://{router}/feedback", [item, forged], challenger_pin)
    assert status == 200 and answer["accepted"] == 1, answer
    assert [r["index"] for r in answer["rejected"]] == [1]


def test_a_retraining_job_builds_a_bento_into_the_store_and_reports_it(
    runner_cluster: LocalCluster,
    pod_runner: PodRunner,
    runner_namespace: str,
    runner_soom_bento: str,
    runner_bentoml_home: Path,
) -> None:
    # Given a Job running the real retraining entrypoint, against the serving champion
    retrain = job(runner_namespace, "retrain-soom", "")
    container = retrain["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [
        "python", "-m", "upsell.retrain", "--scenario", "concept-drift", "--seed", "7",
        "--rows", "6000", "--champion", runner_soom_bento,
    ]  # fmt: skip

    # When it runs to completion
    runner_cluster.apply(retrain)
    runner_cluster.kubectl(
        "wait", "--for=condition=Complete", "job/retrain-soom", "-n", runner_namespace,
        "--timeout=600s", timeout=660,
    )  # fmt: skip

    # Then its pod's termination message is a RetrainingResult naming a bento in the store
    [pod] = pods(runner_cluster, runner_namespace, "job-name=retrain-soom")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    result = RetrainingResult.from_termination_message(terminated["message"])
    assert result.version and result.version != runner_soom_bento
    bento_name, bento_version = result.version.split(":", 1)
    assert (runner_bentoml_home / "bentos" / bento_name / bento_version).is_dir()


def test_the_command_line_runner_publishes_endpoints_and_stops_its_pods_on_sigterm(
    tmp_path: Path,
) -> None:
    # Given a cluster of its own (a second runner node would share the session cluster's pods)
    with LocalCluster(tmp_path / "cluster", node_count=0) as cluster:
        workdir = tmp_path / "runner"
        runner = ManagedProcess(
            name="pod-runner",
            argv=[
                sys.executable, "-m", "devenv.pod_runner",
                "--kubeconfig", str(cluster.kubeconfig_path), "--workdir", str(workdir),
            ],
            log_path=tmp_path / "runner.log",
            env={**os.environ, "PYTHONPATH": os.pathsep.join(PYTHONPATH)},
            die_with_parent=True,
        ).start()  # fmt: skip
        try:
            runner.wait_until_ready(lambda: "pod runner is up" in runner.log_tail(), TIMEOUT)
            cluster.wait_for_service_account("default", "default")

            # When a Deployment and its Service are created
            cluster.apply(echo_deployment("default", "cli"))
            cluster.apply(service("default", "cli", {"app": "cli"}, 3000))

            # Then the runner publishes the Service's stable address and its pod's, which serve
            wait_until(
                lambda: bool(read_service_addresses(workdir, "default", "cli")),
                TIMEOUT,
                what="the Service's ready pod in endpoints.json",
            )
            [address] = read_service_addresses(workdir, "default", "cli", 3000)
            stable = read_service_address(workdir, "default", "cli")
            assert stable is not None and stable != address
            for url in (f"http://{address}/whoami", f"http://{stable}/whoami"):
                status, body, _ = get_json(url)
                assert (status, body["name"]) == (200, "cli")
        finally:
            # And SIGTERM stops the runner and every process it started
            runner.stop()
        port = int(address.rsplit(":", 1)[1])
        assert not port_is_open(port)
