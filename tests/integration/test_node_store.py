"""The real node's bento store: versitygw inside the node's network namespace, holding the
README's bentos, reachable from a pod, and gone when it stops.

Given one real node and the README's bentos (upsell:v1, upsell:v1-gbm) built on the host,
when the node's store starts with them,
then both are stored at the keys the operator computes, a pod on the node gets an answer of
the S3 server at the store's endpoint (403 for an unsigned request), and a stopped store no
longer answers inside the namespace.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from typing import Any

import pytest

from devenv.node import RealNodeCluster
from devenv.node_store import NodeStore, running_node_store
from devenv.oci_image import BUSYBOX_IMAGE
from devenv.s3 import S3Server, bucket_answers
from rollforward.serving.objectstore.client import Answer
from rollforward.serving.objectstore.layout import bento_key


def probe_pod(namespace: str, endpoint: str, path: str) -> dict[str, Any]:
    """An HTTP GET of `path` from a pod; the answer's status line becomes its termination
    message (busybox nc: busybox wget crashes on an error status)."""
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    request = f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
    script = f"printf '{request}' | nc -w 10 {host} {port} | head -1 > /dev/termination-log"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "wget", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script],
        }]},
    }  # fmt: skip


def _head(key: str) -> Callable[[S3Server], Answer]:
    return lambda server: server.store().head(key)


def test_the_store_holds_the_readme_bentos_at_the_operators_keys(node_store: NodeStore) -> None:
    for tag in ("upsell:v1", "upsell:v1-gbm"):
        answer = node_store.call(_head(bento_key(node_store.prefix, tag)))
        assert answer.presence.value == "Present", (tag, answer)
    env = node_store.operator_env()
    assert env["ROLLFORWARD_BENTO_STORE_ENDPOINT"].startswith(f"http://{node_store.netns.node_ip}:")
    assert env["ROLLFORWARD_BENTO_STORE_SECRET"] == "bento-store"


def test_a_pod_on_the_node_reaches_the_store(
    real_node: RealNodeCluster, node_store: NodeStore
) -> None:
    with real_node.cluster.temporary_namespace("store") as namespace:
        real_node.cluster.apply(probe_pod(namespace, node_store.endpoint, f"/{node_store.bucket}/"))
        real_node.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/probe",
                          "-n", namespace, "--timeout=120s")  # fmt: skip
        pod = real_node.cluster.kubectl_json("get", "pod", "probe", "-n", namespace)
        message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    # An unsigned request to a private bucket: the S3 server itself refuses it.
    assert message.startswith("HTTP/1.1 403"), message


def test_a_stopped_store_no_longer_answers(real_node: RealNodeCluster) -> None:
    with running_node_store(real_node) as store:
        server: S3Server = store.server
        assert store.call(lambda s: bucket_answers(s.endpoint, s.bucket, s.credentials))
    with pytest.raises(urllib.error.URLError):
        real_node.netns.call(
            lambda: bucket_answers(server.endpoint, server.bucket, server.credentials)
        )
