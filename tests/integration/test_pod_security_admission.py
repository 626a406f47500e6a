"""Pod Security `restricted`, enforced by the real API server, admits every pod the operator
creates: bento, router and retraining Job pods. Removing any securityContext field that
`restricted` requires makes it refuse them, so these tests fail when a builder drops one.

Pods are created with server-side dry-run: admission runs in full, nothing is stored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from rollforward.api import parse_model_deployment
from rollforward.builders import variant_deployment
from rollforward.observed import Observed
from rollforward.retraining import retraining_job
from rollforward.routers.nginx import NginxRouter
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

Manifest = dict[str, Any]
ENFORCE = "pod-security.kubernetes.io/enforce"
# Every field `restricted` requires that the operator sets or fills in; (level, path).
REQUIRED_FIELDS = [
    ("pod", ("runAsNonRoot",)),
    ("pod", ("seccompProfile",)),
    ("container", ("allowPrivilegeEscalation",)),
    ("container", ("capabilities",)),
    ("container", ("capabilities", "drop")),
]


def generated_pods() -> dict[str, Manifest]:
    """Pod templates (metadata and spec) of every pod the operator creates for the README's
    ModelDeployment: each variant's bento pods, the router and a retraining Job."""
    md = parse_model_deployment({**example_manifest(), "metadata": {"name": "u", "uid": "1"}})
    settings = OperatorSettings()
    served = served_variants(md.spec, md.status)
    pods = {
        f"bento-{v.name}": variant_deployment(md, v, settings)["spec"]["template"] for v in served
    }
    (router,) = [
        o
        for o in NginxRouter().plan(md, served, settings, Observed()).objects
        if o["kind"] == "Deployment"
    ]
    pods["router"] = router["spec"]["template"]
    pods["retraining-job"] = retraining_job(md, "abc", 1, "{}")["spec"]["template"]
    return pods


def pod(name: str, template: Manifest) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"].get("labels", {})},
        "spec": copy.deepcopy(template["spec"]),
    }


def dry_run_create(cluster: LocalCluster, namespace: str, body: Manifest) -> tuple[int, str]:
    response = cluster.api("POST", f"/api/v1/namespaces/{namespace}/pods?dryRun=All", body)
    message = response.body.get("message", "") if isinstance(response.body, dict) else ""
    return response.status, str(message)


@pytest.fixture(scope="module")
def restricted_namespace(local_cluster: LocalCluster) -> Iterator[str]:
    with local_cluster.temporary_namespace("restricted") as namespace:
        local_cluster.kubectl("label", "namespace", namespace, f"{ENFORCE}=restricted")
        yield namespace


def test_the_namespace_enforces_restricted(
    local_cluster: LocalCluster, restricted_namespace: str
) -> None:
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "example/app:1"}]},
    }
    status, message = dry_run_create(local_cluster, restricted_namespace, bare)
    assert status == 403, message
    assert 'violates PodSecurity "restricted:latest"' in message


@pytest.mark.parametrize("kind", sorted(generated_pods()))
def test_restricted_admits_every_generated_pod(
    local_cluster: LocalCluster, restricted_namespace: str, kind: str
) -> None:
    status, message = dry_run_create(
        local_cluster, restricted_namespace, pod(kind, generated_pods()[kind])
    )
    assert status == 201, message


def without(body: Manifest, level: str, path: tuple[str, ...]) -> Manifest:
    """`body` without the field at `path` of the pod's, or of every container's, context."""
    stripped = copy.deepcopy(body)
    spec = stripped["spec"]
    contexts = (
        [spec["securityContext"]]
        if level == "pod"
        else [c["securityContext"] for c in spec["containers"] + spec.get("initContainers", [])]
    )
    for context in contexts:
        *parents, leaf = path
        for key in parents:
            context = context[key]
        assert leaf in context, f"{level} securityContext has no {'.'.join(path)}"
        del context[leaf]
    return stripped


@pytest.mark.parametrize(("level", "path"), REQUIRED_FIELDS, ids=lambda p: str(p))
@pytest.mark.parametrize("kind", sorted(generated_pods()))
def test_removing_a_required_field_is_refused(
    local_cluster: LocalCluster,
    restricted_namespace: str,
    kind: str,
    level: str,
    path: tuple[str, ...],
) -> None:
    body = without(pod(kind, generated_pods()[kind]), level, path)
    status, message = dry_run_create(local_cluster, restricted_namespace, body)
    assert status == 403, f"admitted without {level} {'.'.join(path)}"
    assert "violates PodSecurity" in message
