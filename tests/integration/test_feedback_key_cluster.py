"""The feedback-key Secret on a real API server, under the operator's own RBAC (get, create).

Given a ModelDeployment, when the reconcile runs twice, then the Secret exists once, owned by
the ModelDeployment (so it is garbage-collected with it), with a random key that the second
reconcile does not change; and every bento Deployment reads it through secretKeyRef.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from fixtures.fakes import FakeMetrics
from rollforward.kube import KubeAdapter, load_api_client
from rollforward.reconcile import reconcile
from rollforward.serving.contract import ENV_FEEDBACK_SECRET, FEEDBACK_SECRET_MIN_LENGTH
from rollforward.settings import OperatorSettings


def test_the_key_is_created_once_owned_and_read_by_every_bento(
    local_cluster: LocalCluster, operator_kubeconfig: Path, cluster_namespace: str
) -> None:
    kube = KubeAdapter(load_api_client(str(operator_kubeconfig)))
    body = example_manifest()
    body["metadata"]["namespace"] = cluster_namespace
    del body["spec"]["monitoring"]
    local_cluster.apply(body)
    keys = []
    for _ in range(2):
        stored = kube.get_model_deployment(cluster_namespace, "upsell")
        assert stored is not None
        reconcile(stored, kube, FakeMetrics(), OperatorSettings(), lambda: datetime.now(UTC))
        data = kube.read_secret(cluster_namespace, "upsell-feedback-key")
        assert data is not None
        keys.append(data["key"])
    assert keys[0] == keys[1] and len(keys[0]) >= FEEDBACK_SECRET_MIN_LENGTH

    secret = local_cluster.kubectl_json(
        "-n", cluster_namespace, "get", "secret", "upsell-feedback-key"
    )
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ModelDeployment", "upsell")
    deployments = local_cluster.kubectl_json(
        "-n", cluster_namespace, "get", "deployments", "-l", "app.kubernetes.io/component=bento"
    )["items"]
    assert deployments
    for deployment in deployments:
        (bento,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [e["valueFrom"] for e in bento["env"] if e["name"] == ENV_FEEDBACK_SECRET]
        assert refs == [{"secretKeyRef": {"name": "upsell-feedback-key", "key": "key"}}]
