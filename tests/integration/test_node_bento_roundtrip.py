"""A bento round-trips through the real S3 store on the real node: a retraining Job, as the
operator builds it, runs in the trainer image and exports its bento to the store; the bento
pods the operator builds fetch it in their init container (bento-runtime image) and serve it.

Given one real node, its bento store (versitygw inside the node's network namespace) and a
namespace that enforces Pod Security `restricted`, with the store's credentials Secret,
when the operator's retraining Job runs `upsell.retrain` (3,000 rows, a 30-day window),
then it completes, says where it stored its bento, and the bento is there;
and the operator's Deployment of that bento becomes Ready and answers /predict on its pod IP;
and the Deployment of a bento the store lacks never starts serving: its init container
reports BentoNotFound.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.node import RealNodeCluster
from devenv.node_store import NodeStore
from devenv.processes import wait_until
from fixtures.fixtures_images import BuiltImage
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.bentostore.location import store_for
from rollforward.bentostore.pod import FETCH_CONTAINER
from rollforward.bentostore.view import StoreView, with_store_env
from rollforward.builders import variant_deployment
from rollforward.feedback_key import secret_manifest
from rollforward.retraining import retraining_job
from rollforward.serving.contract import DEFAULT_PORT, RetrainingResult
from rollforward.serving.objectstore.layout import bento_key
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants
from upsell.generator import records

Manifest = dict[str, Any]
ENFORCE = "pod-security.kubernetes.io/enforce"
RETRAIN = ["python", "-m", "upsell.retrain", "--scenario", "baseline", "--rows", "3000",
           "--window-days", "30", "--min-auc", "0.6"]  # fmt: skip


@pytest.fixture(scope="module")
def namespace(
    built_images: dict[str, BuiltImage], real_node: RealNodeCluster, node_store: NodeStore
) -> Iterator[str]:
    """A `restricted` namespace holding the store's credentials Secret.

    `built_images` (session scope) comes first, so the node imports today's images."""
    with real_node.cluster.temporary_namespace("roundtrip") as name:
        real_node.kubectl("label", "namespace", name, f"{ENFORCE}=restricted")
        real_node.cluster.apply(node_store.secret(name))
        yield name


def model_deployment(namespace: str, bento: str, name: str = "upsell") -> ModelDeployment:
    """The README's ModelDeployment in `namespace`, serving `bento` as its only variant."""
    manifest = example_manifest()
    manifest["metadata"].update(name=name, namespace=namespace, uid="uid-1", generation=1)
    manifest["spec"]["variants"] = [
        {"name": "champion", "role": "champion", "bento": bento, "weight": 100}
    ]
    manifest["spec"]["retraining"]["template"]["spec"]["containers"][0]["command"] = RETRAIN
    return parse_model_deployment(manifest)


def unowned(manifest: Manifest) -> Manifest:
    """`manifest` without its owner: no ModelDeployment object exists here, and the garbage
    collector deletes what names a missing owner."""
    metadata = {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}
    return {**manifest, "metadata": metadata}


def the_job(md: ModelDeployment, settings: OperatorSettings) -> Manifest:
    """The Job as decide() hands it to apply: the template's, plus the store's env."""
    store = store_for(md, settings)
    assert store is not None
    (job,) = with_store_env([retraining_job(md, "t1", 1, "{}")], StoreView(store))
    return unowned(job)


def the_deployment(md: ModelDeployment, settings: OperatorSettings) -> Manifest:
    (variant,) = served_variants(md.spec, md.status)
    return unowned(variant_deployment(md, variant, settings))


def _job_result(node: RealNodeCluster, namespace: str, job: str) -> RetrainingResult:
    selector = f"job-name={job}"
    pods = node.cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    (pod,) = pods
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return RetrainingResult.from_termination_message(terminated["message"])


@pytest.fixture(scope="module")
def exported(real_node: RealNodeCluster, node_store: NodeStore, namespace: str) -> RetrainingResult:
    """The operator's retraining Job, run to completion in the trainer image."""
    settings = OperatorSettings(**node_store.operator_settings())
    job = the_job(model_deployment(namespace, "upsell:v1"), settings)
    real_node.cluster.apply(job)
    name = job["metadata"]["name"]
    done = real_node.kubectl("wait", "--for=condition=Complete", f"job/{name}", "-n", namespace,
                             "--timeout=600s", check=False)  # fmt: skip
    assert done.returncode == 0, real_node.kubectl(
        "describe", "pods", "-n", namespace, "-l", f"job-name={name}", check=False
    ).stdout[-4000:]
    return _job_result(real_node, namespace, name)


def test_the_retraining_job_exports_its_bento_to_the_store(
    exported: RetrainingResult, node_store: NodeStore
) -> None:
    key = bento_key(node_store.prefix, exported.version)
    assert exported.stored_at == f"s3://{node_store.bucket}/{key}"
    answer = node_store.call(lambda server: server.store().head(key))
    assert answer.presence.value == "Present", answer


def _ready(node: RealNodeCluster, namespace: str, name: str) -> bool:
    status = node.cluster.kubectl_json("get", "deployment", name, "-n", namespace)["status"]
    return bool(status.get("readyReplicas", 0) >= 1)


def _predict(url: str, record: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(record).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
        return body


def test_the_bento_pod_fetches_the_exported_bento_and_serves_it(
    real_node: RealNodeCluster, node_store: NodeStore, namespace: str, exported: RetrainingResult
) -> None:
    md = model_deployment(namespace, exported.version)
    settings = OperatorSettings(**node_store.operator_settings())
    owner = {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": "none"}
    key = unowned(secret_manifest(md, secrets.token_hex(16), owner))
    deployment = the_deployment(md, settings)
    real_node.cluster.apply([key, deployment])
    name = deployment["metadata"]["name"]
    wait_until(lambda: _ready(real_node, namespace, name), 300, interval=2, what=f"{name} Ready")

    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    (pod,) = real_node.cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["name"] == FETCH_CONTAINER
    assert init["state"]["terminated"]["exitCode"] == 0
    record = next(iter(records("baseline", 1, seed=3)))
    url = f"http://{pod['status']['podIP']}:{DEFAULT_PORT}/predict"
    answer = real_node.netns.call(lambda: _predict(url, record))
    assert answer["label"] in ("stay", "upgrade")


def _fetch_message(node: RealNodeCluster, namespace: str, selector: str) -> str:
    pods = node.cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    for status in pods[0]["status"].get("initContainerStatuses", []) if pods else []:
        for state in (status.get("state", {}), status.get("lastState", {})):
            message = state.get("terminated", {}).get("message", "")
            if message:
                return str(message)
    return ""


def test_a_missing_bento_gives_the_init_containers_reason(
    real_node: RealNodeCluster, node_store: NodeStore, namespace: str
) -> None:
    md = model_deployment(namespace, "upsell:never-built", name="missing")
    settings = OperatorSettings(**node_store.operator_settings())
    deployment = the_deployment(md, settings)
    real_node.cluster.apply(deployment)
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    wait_until(lambda: bool(_fetch_message(real_node, namespace, selector)), 180, interval=2,
               what="the fetch container's termination message")  # fmt: skip
    assert _fetch_message(real_node, namespace, selector).startswith("BentoNotFound:")
    assert not _ready(real_node, namespace, deployment["metadata"]["name"])
