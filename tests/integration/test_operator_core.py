"""The operator against the real control plane, under exactly the chart's RBAC.

Given a ModelDeployment, the operator creates the variants and the router, reports Ready
with the current observedGeneration, changes only what a spec change needs, writes nothing
on a steady-state resync, converges after a crash, and leaves garbage collection to owner
references.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from devenv.operator import OperatorProcess
from devenv.processes import wait_until

SELECTOR = "app.kubernetes.io/managed-by=rollforward,rollforward.io/model-deployment=upsell"


def model_deployment(namespace: str) -> dict[str, Any]:
    manifest = example_manifest()
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["variants"][0]["replicas"] = 1
    return manifest


def get(cluster: LocalCluster, namespace: str, *what: str) -> Any:
    return cluster.kubectl_json("-n", namespace, "get", *what)


def wait_ready(cluster: LocalCluster, namespace: str, timeout: int = 120) -> dict[str, Any]:
    cluster.kubectl(
        "-n",
        namespace,
        "wait",
        "modeldeployment/upsell",
        "--for=condition=Ready",
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )
    body: dict[str, Any] = get(cluster, namespace, "modeldeployment", "upsell")
    return body


def children(cluster: LocalCluster, namespace: str) -> list[tuple[str, str]]:
    listed = get(cluster, namespace, "deployments,services,configmaps", "-l", SELECTOR)
    return sorted((item["kind"], item["metadata"]["name"]) for item in listed["items"])


def test_create_makes_every_child_and_reports_ready(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    local_cluster.apply(model_deployment(cluster_namespace))
    body = wait_ready(local_cluster, cluster_namespace)

    assert children(local_cluster, cluster_namespace) == [
        ("ConfigMap", "upsell-router"),
        ("Deployment", "upsell-challenger"),
        ("Deployment", "upsell-champion"),
        ("Deployment", "upsell-router"),
        ("Service", "upsell-challenger"),
        ("Service", "upsell-champion"),
        ("Service", "upsell-router"),
    ]
    local_cluster.kubectl(
        "-n",
        cluster_namespace,
        "wait",
        "deployments",
        "-l",
        SELECTOR,
        "--for=condition=Available",
        "--timeout=60s",
    )
    status = body["status"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["observedGeneration"] == body["metadata"]["generation"]
    assert status["split"] == "champion=90 challenger=10"
    assert status["phase"] == "Stable"

    table = local_cluster.kubectl("-n", cluster_namespace, "get", "md").stdout
    assert "upsell:v1" in table and "champion=90 challenger=10" in table and "Stable" in table
    events = get(local_cluster, cluster_namespace, "events")["items"]
    # The first reconcile's seven child writes are one transition: one Event names them all.
    created = [
        e
        for e in events
        if e["involvedObject"]["name"] == "upsell" and e["reason"] == "CreatedChildren"
    ]
    assert len(created) == 1
    assert "Deployment upsell-champion" in created[0]["message"]
    assert "ConfigMap upsell-router" in created[0]["message"]


def test_weight_change_rewrites_the_router_only(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    local_cluster.apply(model_deployment(cluster_namespace))
    wait_ready(local_cluster, cluster_namespace)
    before = {
        d["metadata"]["name"]: d
        for d in get(local_cluster, cluster_namespace, "deployments", "-l", SELECTOR)["items"]
    }
    old_config = get(local_cluster, cluster_namespace, "configmap", "upsell-router")

    reweighted = model_deployment(cluster_namespace)
    reweighted["spec"]["variants"][0]["weight"] = 75
    reweighted["spec"]["variants"][1]["weight"] = 25
    local_cluster.apply(reweighted)

    def router_rewritten() -> bool:
        config = get(local_cluster, cluster_namespace, "configmap", "upsell-router")
        return bool(config["data"] != old_config["data"])

    wait_until(router_rewritten, timeout=60, what="the router config to change")
    body = wait_ready(local_cluster, cluster_namespace)
    wait_until(
        lambda: (
            get(local_cluster, cluster_namespace, "md", "upsell")["status"]["split"]
            == "champion=75 challenger=25"
        ),
        timeout=60,
        what="status.split to show the new weights",
    )
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    after = {
        d["metadata"]["name"]: d
        for d in get(local_cluster, cluster_namespace, "deployments", "-l", SELECTOR)["items"]
    }
    for variant in ("upsell-champion", "upsell-challenger"):
        assert after[variant]["metadata"]["generation"] == before[variant]["metadata"]["generation"]
    checksum = "rollforward.io/config-checksum"
    old_pod = before["upsell-router"]["spec"]["template"]["metadata"]["annotations"][checksum]
    new_pod = after["upsell-router"]["spec"]["template"]["metadata"]["annotations"][checksum]
    assert old_pod != new_pod, "the router must roll when its config changes"


def test_steady_state_resync_makes_no_write(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    local_cluster.apply(model_deployment(cluster_namespace))
    wait_ready(local_cluster, cluster_namespace)
    # Let the last child events and the status write settle.
    wait_until(
        lambda: (
            get(local_cluster, cluster_namespace, "md", "upsell")["status"]["phase"] == "Stable"
        ),
        timeout=60,
        what="phase Stable",
    )
    time.sleep(5)
    writes_before = operator.counter("rollforward_operator_api_writes_total")
    reads_before = operator.counter("rollforward_operator_api_reads_total")
    reconciles_before = operator.counter("rollforward_operator_reconciles_total")
    version_before = get(local_cluster, cluster_namespace, "md", "upsell")["metadata"][
        "resourceVersion"
    ]

    time.sleep(8)  # four resync periods of 2 s

    reconciles = operator.counter("rollforward_operator_reconciles_total") - reconciles_before
    assert reconciles >= 3, "the resync timer must have run"
    writes = operator.counter("rollforward_operator_api_writes_total") - writes_before
    assert writes == 0, [
        line for line in operator.metrics_text().splitlines() if "api_writes_total{" in line
    ]
    # Reconciled from the watch-fed cache: not one GET or LIST either.
    reads = operator.counter("rollforward_operator_api_reads_total") - reads_before
    assert reads == 0, [
        line for line in operator.metrics_text().splitlines() if "api_reads_total{" in line
    ]
    version_after = get(local_cluster, cluster_namespace, "md", "upsell")["metadata"][
        "resourceVersion"
    ]
    assert version_after == version_before


def test_delete_garbage_collects_every_child(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    local_cluster.apply(model_deployment(cluster_namespace))
    wait_ready(local_cluster, cluster_namespace)
    local_cluster.kubectl("-n", cluster_namespace, "delete", "md", "upsell", "--wait=true")
    wait_until(
        lambda: children(local_cluster, cluster_namespace) == [],
        timeout=90,
        what="owner-reference garbage collection of the children",
    )
    pods = get(local_cluster, cluster_namespace, "pods", "-l", SELECTOR)["items"]
    wait_until(
        lambda: get(local_cluster, cluster_namespace, "pods", "-l", SELECTOR)["items"] == [],
        timeout=90,
        what=f"pods to go ({len(pods)} left)",
    )


def test_operator_killed_mid_reconcile_converges_after_restart(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    scope = [cluster_namespace]
    first = OperatorProcess(operator_kubeconfig, tmp_path / "first", namespaces=scope).start()
    local_cluster.apply(model_deployment(cluster_namespace))
    wait_until(
        lambda: len(children(local_cluster, cluster_namespace)) >= 1,
        timeout=60,
        what="the first child to be written",
    )
    first.kill()
    partial = children(local_cluster, cluster_namespace)

    with OperatorProcess(operator_kubeconfig, tmp_path / "second", namespaces=scope):
        body = wait_ready(local_cluster, cluster_namespace)
    final = children(local_cluster, cluster_namespace)
    assert set(partial) <= set(final)
    assert len(final) == 7, final
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    replica_sets = get(
        local_cluster, cluster_namespace, "replicasets", "-l", "rollforward.io/variant"
    )
    owners = [rs["metadata"]["ownerReferences"][0]["name"] for rs in replica_sets["items"]]
    assert sorted(owners) == ["upsell-challenger", "upsell-champion"], json.dumps(owners)


def test_variant_that_never_becomes_ready_reports_its_deployment_and_the_other_serves(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    manifest = model_deployment(cluster_namespace)
    manifest["spec"]["variants"][1]["image"] = "rollforward.test/never-ready"
    manifest["spec"]["variants"][1].pop("bento")
    local_cluster.apply(manifest)

    def not_ready_because_of_the_challenger() -> bool:
        status = get(local_cluster, cluster_namespace, "md", "upsell").get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
        return bool(
            ready
            and ready["status"] == "False"
            and ready["reason"] == "VariantUnavailable"
            and "variant challenger: 0/1 replicas ready" in ready["message"]
            # The champion's pod is Ready first and available minReadySeconds later.
            and "variant champion" not in ready["message"]
        )

    wait_until(
        not_ready_because_of_the_challenger,
        timeout=90,
        what="Ready=False for the challenger alone",
    )
    status = get(local_cluster, cluster_namespace, "md", "upsell")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    # The reason is the Deployment's own condition message.
    assert "Deployment says:" in ready["message"], ready["message"]
    champion = next(v for v in status["variants"] if v["name"] == "champion")
    assert champion["readyReplicas"] == 1
    local_cluster.kubectl(
        "-n", cluster_namespace, "wait", "deployment/upsell-champion", "--for=condition=Available",
        "--timeout=60s",
    )  # fmt: skip
