"""The operator and a real bento store (versitygw) on the real control plane.

Given a store that lacks a bento, or credentials it refuses, the variant says why
(BentoNotFound, BentoStoreForbidden) while the champion's Deployment stays Available; a
retrained candidate whose bento never reached the store is rejected by the gate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.loop_manifests import CANDIDATE, CHAMPION, manifest, retraining_result
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from devenv.s3 import S3Server
from rollforward.serving.objectstore.layout import bento_key

SECRET = "bento-store"
CHALLENGER = "upsell:v1-gbm"


@pytest.fixture
def operator_fast(
    operator_kubeconfig: Path, cluster_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator, trusting an answer of the store for one second only."""
    env = {"ROLLFORWARD_BENTO_STORE_CHECK_SECONDS": "1"}
    with OperatorProcess(
        operator_kubeconfig, tmp_path, env=env, namespaces=[cluster_namespace]
    ) as running:
        yield running
    log = running.log_path.read_text()
    assert "is forbidden: User" not in log, "the operator hit RBAC denials"
    assert "Traceback" not in log, log[-3000:]


def store_bento(server: S3Server, tag: str, tmp_path: Path) -> None:
    # The operator only asks whether the object is there; its content is the pods' business.
    archive = tmp_path / "placeholder.bento"
    archive.write_bytes(b"not a real bento")
    server.store().put(bento_key("bentos", tag), archive)


def apply_secret(cluster: LocalCluster, namespace: str, access: str, secret: str) -> None:
    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "data": {
                "AWS_ACCESS_KEY_ID": encoded(access),
                "AWS_SECRET_ACCESS_KEY": encoded(secret),
            },
        }
    )


def keys(server: S3Server) -> tuple[str, str]:
    return server.credentials.access_key, server.credentials.secret_key


def with_store(body: dict[str, Any], server: S3Server) -> dict[str, Any]:
    body["spec"]["bentoStore"] = {
        "endpoint": server.endpoint,
        "bucket": server.bucket,
        "credentialsSecret": SECRET,
    }
    return body


def serving(namespace: str, server: S3Server) -> dict[str, Any]:
    """A champion and a challenger; no retraining."""
    body = manifest(namespace, "http://127.0.0.1:1", retraining_result())
    del body["spec"]["retraining"]
    body["spec"]["variants"] = [
        {"name": "champion", "role": "champion", "bento": CHAMPION, "weight": 90},
        {"name": "challenger", "role": "challenger", "bento": CHALLENGER, "weight": 10},
    ]
    return with_store(body, server)


def status_of(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    body = cluster.kubectl_json("-n", namespace, "get", "md", "upsell")
    found: dict[str, Any] = body.get("status") or {}
    return found


def wait_status(
    cluster: LocalCluster, namespace: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    wait_until(lambda: check(status_of(cluster, namespace)), timeout=120, interval=1, what=what)
    return status_of(cluster, namespace)


def ready(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def variant(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((v for v in status.get("variants", []) if v["name"] == name), {})


def champion_available(cluster: LocalCluster, namespace: str) -> bool:
    body = cluster.kubectl_json("-n", namespace, "get", "deployment", "upsell-champion")
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def test_a_missing_bento_makes_its_variant_not_ready_and_the_champion_serves(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    s3_server: S3Server,
    operator_fast: OperatorProcess,
    tmp_path: Path,
) -> None:
    # Given a store holding the champion's bento but not the challenger's
    store_bento(s3_server, CHAMPION, tmp_path)
    apply_secret(local_cluster, cluster_namespace, *keys(s3_server))

    # When the ModelDeployment is applied
    local_cluster.apply(serving(cluster_namespace, s3_server))

    # Then the challenger says BentoNotFound, and the champion serves
    status = wait_status(
        local_cluster,
        cluster_namespace,
        lambda s: variant(s, "challenger").get("reason") == "BentoNotFound",
        "the challenger to report BentoNotFound",
    )
    assert ready(status)["status"] == "False" and ready(status)["reason"] == "BentoNotFound"
    assert "reason" not in variant(status, "champion")
    wait_until(
        lambda: champion_available(local_cluster, cluster_namespace),
        timeout=60,
        what="the champion's Deployment to be Available",
    )
    init = local_cluster.kubectl_json(
        "-n", cluster_namespace, "get", "deployment", "upsell-champion"
    )
    containers = init["spec"]["template"]["spec"]["initContainers"]
    assert containers[0]["args"] == ["pull", CHAMPION]

    # And once the bento is stored, the reason goes away
    store_bento(s3_server, CHALLENGER, tmp_path)
    wait_status(
        local_cluster,
        cluster_namespace,
        lambda s: (
            ready(s).get("reason") != "BentoNotFound" and not variant(s, "challenger").get("reason")
        ),
        "the challenger's reason to clear",
    )


def test_refused_credentials_say_forbidden_and_the_champion_serves(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    s3_server: S3Server,
    operator_fast: OperatorProcess,
    tmp_path: Path,
) -> None:
    # Given both bentos stored, but a Secret with the wrong secret key
    store_bento(s3_server, CHAMPION, tmp_path)
    store_bento(s3_server, CHALLENGER, tmp_path)
    apply_secret(local_cluster, cluster_namespace, s3_server.credentials.access_key, "wrong")

    # When the ModelDeployment is applied
    local_cluster.apply(serving(cluster_namespace, s3_server))

    # Then every variant says BentoStoreForbidden; the champion's Deployment still serves
    status = wait_status(
        local_cluster,
        cluster_namespace,
        lambda s: ready(s).get("reason") == "BentoStoreForbidden",
        "Ready=False with BentoStoreForbidden",
    )
    assert variant(status, "champion")["reason"] == "BentoStoreForbidden"
    assert variant(status, "challenger")["reason"] == "BentoStoreForbidden"
    wait_until(
        lambda: champion_available(local_cluster, cluster_namespace),
        timeout=60,
        what="the champion's Deployment to be Available",
    )


def test_the_gate_rejects_a_candidate_whose_bento_is_not_stored(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    s3_server: S3Server,
    operator_fast: OperatorProcess,
    tmp_path: Path,
) -> None:
    # Given a champion in the store, and a retraining that reports a bento it never exported
    store_bento(s3_server, CHAMPION, tmp_path)
    apply_secret(local_cluster, cluster_namespace, *keys(s3_server))
    body = with_store(
        manifest(cluster_namespace, "http://127.0.0.1:1", retraining_result()), s3_server
    )
    body["spec"]["retraining"]["trigger"] = "manual"
    body["metadata"]["annotations"] = {"rollforward.io/retrain": "now"}

    # When the retraining Job finishes
    local_cluster.apply(body)

    # Then the candidate is rejected for the store, never deployed, and the champion serves
    status = wait_status(
        local_cluster,
        cluster_namespace,
        lambda s: (s.get("retraining") or {}).get("phase") == "Rejected",
        "the candidate to be rejected",
    )
    assert "not in the bento store" in status["retraining"]["message"]
    assert "BentoNotFound" in status["retraining"]["message"]
    assert CANDIDATE in status["failedVersions"]
    assert any(h["version"] == CANDIDATE and h["outcome"] == "Rejected" for h in status["history"])
    deployments = local_cluster.kubectl_json("-n", cluster_namespace, "get", "deployments")
    assert "upsell-candidate" not in {d["metadata"]["name"] for d in deployments["items"]}
    assert status["champion"] == CHAMPION
    wait_until(
        lambda: champion_available(local_cluster, cluster_namespace),
        timeout=60,
        what="the champion's Deployment to be Available",
    )


def test_a_rejected_candidates_bento_is_deleted_from_the_store(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    s3_server: S3Server,
    operator_fast: OperatorProcess,
    tmp_path: Path,
) -> None:
    # Given a retraining whose candidate reached the store but fails minAuc
    store_bento(s3_server, CHAMPION, tmp_path)
    store_bento(s3_server, CANDIDATE, tmp_path)
    apply_secret(local_cluster, cluster_namespace, *keys(s3_server))
    body = with_store(
        manifest(cluster_namespace, "http://127.0.0.1:1", retraining_result(0.55)), s3_server
    )
    body["spec"]["retraining"]["trigger"] = "manual"
    body["metadata"]["annotations"] = {"rollforward.io/retrain": "now"}

    # When the gate rejects it
    local_cluster.apply(body)
    wait_status(
        local_cluster,
        cluster_namespace,
        lambda s: (s.get("retraining") or {}).get("phase") == "Rejected",
        "the candidate to be rejected",
    )

    # Then its bento leaves the store, and the champion's stays
    store = s3_server.store()
    wait_until(
        lambda: store.head(bento_key("bentos", CANDIDATE)).presence.value == "BentoNotFound",
        timeout=60,
        what="the rejected bento to be deleted",
    )
    assert store.head(bento_key("bentos", CHAMPION)).presence.value == "Present"
