"""What lets one replica serve many ModelDeployments, on the real control plane.

Given the operator's own RBAC: repeats of an Event patch one object's count instead of
creating more; a deleted child is recreated from the watch-fed cache, with no read of the API
server; a relist after missed watch events leaves the cache as the API server is; two
shards handle disjoint and complete parts of the resources; and a SIGTERM while resources pour
in stops the operator by itself, with no ERROR in its log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from fixtures.fakes import FakeMetrics
from rollforward.api import parse_model_deployment
from rollforward.events import Event, EventAggregator
from rollforward.kube import KubeAdapter, load_api_client
from rollforward.kube_cache import CachedCluster
from rollforward.naming import LABEL_MODEL_DEPLOYMENT as OWNER
from rollforward.reconcile import reconcile
from rollforward.settings import OperatorSettings
from rollforward.sharding import shard_of


def model_deployment(namespace: str, name: str = "upsell") -> dict[str, Any]:
    manifest = example_manifest()
    manifest["metadata"] = {"name": name, "namespace": namespace}
    manifest["spec"]["variants"][0]["replicas"] = 1
    return manifest


def wait_ready(cluster: LocalCluster, namespace: str, name: str = "upsell") -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "wait",
        f"modeldeployment/{name}",
        "--for=condition=Ready",
        "--timeout=120s",
        timeout=130,
    )


def test_repeated_events_become_one_object_with_a_count(
    local_cluster: LocalCluster, operator_kubeconfig: Path, cluster_namespace: str
) -> None:
    kube = KubeAdapter(
        load_api_client(str(operator_kubeconfig)), events=EventAggregator(quiet_seconds=60)
    )
    local_cluster.apply(model_deployment(cluster_namespace))
    stored = kube.get_model_deployment(cluster_namespace, "upsell")
    assert stored is not None
    deployment = parse_model_deployment(stored)
    event = Event("Warning", "NoData", "no samples in the window")
    t0 = datetime.now(UTC)
    # Two repeats within the quiet minute write nothing; the one after it patches the count.
    for seconds in (0, 10, 20, 70):
        kube.post_event(deployment, event, t0 + timedelta(seconds=seconds))
    kube.post_event(deployment, Event("Normal", "NoData", "another message"), t0)

    events = local_cluster.kubectl_json("-n", cluster_namespace, "get", "events")["items"]
    ours = [e for e in events if e["involvedObject"]["name"] == "upsell"]
    by_message = {e["message"]: e for e in ours}
    assert len(ours) == 2
    assert by_message["no samples in the window"]["count"] == 4
    assert by_message["another message"]["count"] == 1


def test_a_deleted_child_is_recreated_from_the_cache(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> None:
    local_cluster.apply(model_deployment(cluster_namespace))
    wait_ready(local_cluster, cluster_namespace)
    reads_before = operator.counter("rollforward_operator_api_reads_total")
    local_cluster.kubectl("-n", cluster_namespace, "delete", "deployment", "upsell-challenger")

    def recreated() -> bool:
        found = local_cluster.kubectl(
            "-n", cluster_namespace, "get", "deployment", "upsell-challenger", check=False
        )
        return found.returncode == 0

    wait_until(recreated, timeout=60, what="the deleted Deployment recreated")
    # The watch's DELETED event reached the cache, and the reconcile it queued read nothing.
    assert operator.counter("rollforward_operator_api_reads_total") == reads_before


def test_a_relist_rebuilds_the_cache_after_missed_watch_events(
    local_cluster: LocalCluster, operator_kubeconfig: Path, cluster_namespace: str
) -> None:
    """A watch that broke misses events; the relist that follows its restart must leave the
    cache as the API server is, and name the resources to reconcile."""
    kube = KubeAdapter(load_api_client(str(operator_kubeconfig)))
    cluster = CachedCluster(kube, [cluster_namespace])
    local_cluster.apply(model_deployment(cluster_namespace))
    assert cluster.relist() == {(cluster_namespace, "upsell")}
    stored = cluster.model_deployment(cluster_namespace, "upsell")
    assert stored is not None
    reconcile(stored, cluster, FakeMetrics(), OperatorSettings(), lambda: datetime.now(UTC))
    kinds = ("Deployment", "Service", "ConfigMap")
    deployment = parse_model_deployment(stored)
    assert len(cluster.observe(deployment, kinds).children) == 7

    # While no watch feeds the cache: a child is deleted and the resource is changed.
    local_cluster.kubectl("-n", cluster_namespace, "delete", "service", "upsell-challenger")
    local_cluster.kubectl(
        "-n", cluster_namespace, "annotate", "md", "upsell", "example.com/touched=yes"
    )
    assert len(cluster.observe(deployment, kinds).children) == 7  # stale, as a broken watch

    assert cluster.relist() == {(cluster_namespace, "upsell")}
    observed = cluster.observe(deployment, kinds).children
    assert ("Service", "upsell-challenger") not in observed and len(observed) == 6
    fresh = cluster.model_deployment(cluster_namespace, "upsell")
    assert fresh is not None
    assert fresh["metadata"]["annotations"]["example.com/touched"] == "yes"
    # A relist that finds nothing new names no resource.
    assert cluster.relist() == set()


def test_two_shards_each_handle_a_disjoint_and_complete_part(
    local_cluster: LocalCluster,
    operator_kubeconfig: Path,
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    candidates = [f"m{i}" for i in range(20)]
    names = [n for n in candidates if shard_of(cluster_namespace, n, 2) == 0][:1]
    names += [n for n in candidates if shard_of(cluster_namespace, n, 2) == 1][:1]
    for name in names:
        local_cluster.apply(model_deployment(cluster_namespace, name))
    managers = {0: "rollforward-shard-0", 1: "rollforward-shard-1"}
    with (
        OperatorProcess(
            operator_kubeconfig,
            tmp_path / "s0",
            env={"ROLLFORWARD_SHARD": "0/2", "ROLLFORWARD_FIELD_MANAGER": managers[0]},
            namespaces=[cluster_namespace],
        ),
        OperatorProcess(
            operator_kubeconfig,
            tmp_path / "s1",
            env={"ROLLFORWARD_SHARD": "1/2", "ROLLFORWARD_FIELD_MANAGER": managers[1]},
            namespaces=[cluster_namespace],
        ),
    ):
        for name in names:
            wait_ready(local_cluster, cluster_namespace, name)
        listed = local_cluster.kubectl_json(
            "-n", cluster_namespace, "get", "md,deployments", "--show-managed-fields"
        )["items"]
    for item in listed:
        meta = item["metadata"]
        owner = meta["name"] if item["kind"] == "ModelDeployment" else meta["labels"][OWNER]
        writers = {m["manager"] for m in meta["managedFields"]} & set(managers.values())
        # Exactly one replica wrote each resource and its children: the one its hash names.
        assert writers == {managers[shard_of(cluster_namespace, owner, 2)]}, meta["name"]


def test_a_sigterm_while_resources_pour_in_stops_cleanly(
    local_cluster: LocalCluster, operator_kubeconfig: Path, cluster_namespace: str, tmp_path: Path
) -> None:
    """Given the operator busy with new resources (kopf's watchers start a worker for each
    new object, where a cancellation left a watch stream open and asyncio logged "an error
    occurred during closing of asynchronous generator" at shutdown), when it gets SIGTERM,
    then it exits by itself within the grace period and logs no ERROR."""
    operator = OperatorProcess(operator_kubeconfig, tmp_path, namespaces=[cluster_namespace])
    operator.start()
    try:
        local_cluster.apply([model_deployment(cluster_namespace, f"m{i}") for i in range(20)])
        wait_until(
            lambda: operator.counter("rollforward_operator_reconciles_total") >= 3,
            timeout=60,
            what="the operator reconciling",
        )
    finally:
        started = time.monotonic()
        operator.stop()
    took = time.monotonic() - started
    log = operator.log_path.read_text()
    assert operator.process.returncode == 0, (operator.process.returncode, log[-3000:])
    assert took < 10, took
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert errors == [], errors
