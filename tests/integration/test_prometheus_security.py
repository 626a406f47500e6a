"""The operator against a real Prometheus serving TLS with basic auth (`--web.config.file`).

Given Prometheus behind a certificate from a CA made here and a bcrypt-hashed password, and
the CA and credentials in Secrets on a real API server (read under the chart's RBAC), when
one reconcile runs (real KubeAdapter, real Prometheus client), then: the right CA and
password reach Prometheus; a wrong CA, a wrong password, a missing Secret and plain
verification against the system CAs each give MonitoringAvailable=False with a reason that
names the problem; and none of them is evidence (Drifted inconclusive, no Job, no rollback).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from devenv.pki import KeyPair, create_ca, issue_certificate
from devenv.prometheus import LocalPrometheus, WebSecurity
from rollforward.api import ConditionType, Phase, Reason, parse_model_deployment
from rollforward.conditions import find_condition
from rollforward.kube import KubeAdapter, load_api_client
from rollforward.prometheus import PrometheusSource
from rollforward.prometheus_access import PrometheusTarget, resolve_target
from rollforward.reconcile import reconcile
from rollforward.settings import OperatorSettings

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return create_ca(tmp_path_factory.mktemp("ca"), "rollforward-test-prometheus-ca")


@pytest.fixture(scope="module")
def secured_prometheus(
    ca: KeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    certs = tmp_path_factory.mktemp("prometheus-certs")
    server = issue_certificate(
        ca, certs, "prometheus", common_name="prometheus", server_sans=["IP:127.0.0.1"]
    )
    security = WebSecurity(server.cert, server.key, ca.cert, user="rollforward", password=PASSWORD)
    base = tmp_path_factory.mktemp("prometheus")
    with LocalPrometheus(base, security=security) as running:
        yield running


def secret(namespace: str, name: str, data: dict[str, str], kind: str = "Opaque") -> Any:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "namespace": namespace},
        "data": encoded,
    }


@pytest.fixture
def secrets(
    local_cluster: LocalCluster, cluster_namespace: str, ca: KeyPair, tmp_path: Path
) -> str:
    other = create_ca(tmp_path / "other-ca", "someone-else")
    basic = "kubernetes.io/basic-auth"
    local_cluster.apply(
        [
            secret(cluster_namespace, "prom-ca", {"ca.crt": ca.cert.read_text()}),
            secret(cluster_namespace, "other-ca", {"ca.crt": other.cert.read_text()}),
            secret(
                cluster_namespace,
                "prom-user",
                {"username": "rollforward", "password": PASSWORD},
                basic,
            ),
            secret(
                cluster_namespace,
                "bad-user",
                {"username": "rollforward", "password": "guess"},
                basic,
            ),
        ]
    )
    return cluster_namespace


def manifest(namespace: str, url: str, **monitoring: Any) -> dict[str, Any]:
    body = example_manifest()
    body["metadata"]["namespace"] = namespace
    body["spec"]["monitoring"] = {"prometheusUrl": url, **monitoring}
    return body


def reconcile_once(
    cluster: LocalCluster, kube: KubeAdapter, body: dict[str, Any]
) -> dict[str, Any]:
    """Create the resource, run one reconcile in-process, and read back what it wrote."""
    cluster.apply(body)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    stored = kube.get_model_deployment(namespace, name)
    assert stored is not None
    source = PrometheusSource(timeout_seconds=3, retries=1)
    reconcile(stored, kube, source, OperatorSettings(), lambda: datetime.now(UTC))
    found = kube.get_model_deployment(namespace, name)
    assert found is not None
    return found


def assert_no_evidence(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> None:
    status = parse_model_deployment(body).status
    drifted = find_condition(status.conditions, ConditionType.DRIFTED)
    assert drifted is not None and drifted.reason == Reason.CHECK_INCONCLUSIVE, drifted
    assert not status.drift_tracking.drifted
    assert status.phase not in (Phase.DRIFTED, Phase.RETRAINING, Phase.ROLLED_BACK)
    jobs = cluster.kubectl_json("-n", namespace, "get", "jobs")["items"]
    assert jobs == [], "a failed Prometheus query started a retraining Job"


def monitoring(body: dict[str, Any]) -> tuple[str, str, str]:
    found = find_condition(
        parse_model_deployment(body).status.conditions, ConditionType.MONITORING_AVAILABLE
    )
    assert found is not None
    return found.status, found.reason, found.message


@pytest.fixture
def kube(operator_kubeconfig: Path) -> KubeAdapter:
    """The operator's own identity: bound to exactly the chart's RBAC rules."""
    return KubeAdapter(load_api_client(str(operator_kubeconfig)))


CASES = {
    "wrong-ca": (
        {
            "caSecret": {"name": "other-ca", "key": "ca.crt"},
            "basicAuthSecret": {"name": "prom-user"},
        },
        Reason.PROMETHEUS_TLS_ERROR,
        "TLS",
    ),
    "system-cas": ({"basicAuthSecret": {"name": "prom-user"}}, Reason.PROMETHEUS_TLS_ERROR, "TLS"),
    "wrong-password": (
        {"caSecret": {"name": "prom-ca", "key": "ca.crt"}, "basicAuthSecret": {"name": "bad-user"}},
        Reason.PROMETHEUS_UNAUTHORIZED,
        "401",
    ),
    "missing-secret": (
        {"caSecret": {"name": "prom-ca", "key": "ca.crt"}, "basicAuthSecret": {"name": "nobody"}},
        Reason.PROMETHEUS_SECRET_MISSING,
        "nobody",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_access_problem_is_named_and_never_evidence(
    case: str,
    local_cluster: LocalCluster,
    secrets: str,
    secured_prometheus: LocalPrometheus,
    kube: KubeAdapter,
) -> None:
    spec, reason, word = CASES[case]
    body = reconcile_once(local_cluster, kube, manifest(secrets, secured_prometheus.url, **spec))
    status, found_reason, message = monitoring(body)
    assert (status, found_reason) == ("False", reason), message
    assert word in message
    assert_no_evidence(local_cluster, secrets, body)


def test_the_right_ca_and_password_reach_prometheus(
    local_cluster: LocalCluster,
    secrets: str,
    secured_prometheus: LocalPrometheus,
    kube: KubeAdapter,
) -> None:
    spec = {
        "caSecret": {"name": "prom-ca", "key": "ca.crt"},
        "basicAuthSecret": {"name": "prom-user"},
    }
    body = manifest(secrets, secured_prometheus.url, **spec)
    target = resolve_target(parse_model_deployment(body), OperatorSettings(), kube.read_secret)
    assert isinstance(target, PrometheusTarget)
    answer = PrometheusSource(retries=0).query(
        target.url, "vector(42)", datetime.now(UTC), target.access
    )
    assert answer.ok, answer.error
    assert [s.value for s in answer.samples] == [42.0]
    # Through the whole reconcile: Prometheus answered; it has no bento's data, so the check
    # has nothing to decide on (NoData), which is still never evidence.
    written = reconcile_once(local_cluster, kube, body)
    assert monitoring(written)[:2] == ("False", Reason.NO_DATA)
    assert_no_evidence(local_cluster, secrets, written)
