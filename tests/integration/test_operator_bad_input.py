"""Bad input that passes the schema: the resource says why, and the others never wait for it.

Given three ModelDeployments the API server accepts but that cannot work (a Prometheus URL
that is not a URL, a Prometheus credential Secret that does not exist, a bento that is not
in the bento store), applied before fifty healthy ones to one operator, then each bad one
gets a condition whose reason names its problem, every healthy one becomes Ready for its
generation, and the operator process is never restarted and logs no traceback. The healthy
ones use the plain-Service router and one champion replica, so fifty cost fifty kwok pods.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devenv.cluster import LocalCluster
from devenv.loop_manifests import CHAMPION
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from devenv.s3 import S3Server

HEALTHY = 50
STORE_SECRET = "bento-store"


def serving(namespace: str, name: str, prometheus: str) -> dict[str, Any]:
    """One champion replica behind a plain Service; no retraining, no rollout."""
    return {
        "apiVersion": "rollforward.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "upsell",
            "variants": [
                {"name": "champion", "role": "champion", "bento": CHAMPION, "weight": 100}
            ],
            "traffic": {"router": "service"},
            "monitoring": {"prometheusUrl": prometheus},
        },
    }


def bad_resources(namespace: str, prometheus: str, store: S3Server) -> dict[str, dict[str, Any]]:
    """name -> manifest of each resource that passes the schema but cannot work."""
    bad_url = serving(namespace, "bad-url", "http://prometheus:port/")
    no_secret = serving(namespace, "no-secret", prometheus)
    no_secret["spec"]["monitoring"]["basicAuthSecret"] = {"name": "absent"}
    no_bento = serving(namespace, "no-bento", prometheus)
    no_bento["spec"]["variants"][0]["bento"] = "upsell:never-built"
    no_bento["spec"]["bentoStore"] = {
        "endpoint": store.endpoint,
        "bucket": store.bucket,
        "credentialsSecret": STORE_SECRET,
    }
    return {"bad-url": bad_url, "no-secret": no_secret, "no-bento": no_bento}


def store_secret(namespace: str, store: S3Server) -> dict[str, Any]:
    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": STORE_SECRET, "namespace": namespace},
        "data": {
            "AWS_ACCESS_KEY_ID": encoded(store.credentials.access_key),
            "AWS_SECRET_ACCESS_KEY": encoded(store.credentials.secret_key),
        },
    }


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def ready_for_generation(body: dict[str, Any]) -> bool:
    ready = condition(body, "Ready")
    generation = body["metadata"]["generation"]
    return ready.get("status") == "True" and ready.get("observedGeneration") == generation


EXPECTED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "bad-url": lambda b: (
        condition(b, "MonitoringAvailable").get("reason") == "PrometheusURLInvalid"
    ),
    "no-secret": lambda b: (
        condition(b, "MonitoringAvailable").get("reason") == "PrometheusSecretMissing"
    ),
    "no-bento": lambda b: condition(b, "Ready").get("reason") == "BentoNotFound",
}


def by_name(cluster: LocalCluster, namespace: str) -> dict[str, dict[str, Any]]:
    items = cluster.kubectl_json("-n", namespace, "get", "md")["items"]
    return {item["metadata"]["name"]: item for item in items}


def test_bad_resources_say_why_and_never_delay_fifty_healthy_ones(
    local_cluster: LocalCluster,
    cluster_namespace: str,
    operator_kubeconfig: Path,
    local_prometheus: LocalPrometheus,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    namespace, prometheus = cluster_namespace, local_prometheus.url
    local_cluster.apply(store_secret(namespace, s3_server))
    with OperatorProcess(operator_kubeconfig, tmp_path, namespaces=[namespace]) as operator:
        pid = operator.process.pid
        # The bad ones first, so they are ahead of the healthy ones in every queue.
        local_cluster.apply(list(bad_resources(namespace, prometheus, s3_server).values()))
        healthy = [serving(namespace, f"healthy-{i:02d}", prometheus) for i in range(HEALTHY)]
        local_cluster.apply({"apiVersion": "v1", "kind": "List", "items": healthy})

        def settled() -> bool:
            found = by_name(local_cluster, namespace)
            ready = [
                n for n, b in found.items() if n.startswith("healthy-") and ready_for_generation(b)
            ]
            bad_ok = all(check(found[name]) for name, check in EXPECTED.items())
            return len(ready) == HEALTHY and bad_ok

        wait_until(settled, timeout=300, interval=2, what=f"{HEALTHY} Ready and 3 named problems")
        found = by_name(local_cluster, namespace)
        assert operator.process.running() and operator.process.pid == pid
    assert condition(found["no-bento"], "Ready").get("status") == "False"
    log = operator.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "is forbidden: User" not in log
    messages = {n: condition(found[n], "MonitoringAvailable").get("message", "") for n in EXPECTED}
    assert "is not a URL" in messages["bad-url"], messages
    assert "absent" in messages["no-secret"], messages
