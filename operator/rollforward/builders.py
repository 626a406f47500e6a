"""Pure builders of the per-variant child objects. They return plain manifests."""

from __future__ import annotations

import hashlib
import json

from rollforward.api import ModelDeployment
from rollforward.bentostore.location import log_env, store_for
from rollforward.bentostore.pod import with_fetched_bento
from rollforward.feedback_key import key_env
from rollforward.naming import (
    ANNOTATION_DESIRED_HASH,
    ANNOTATION_VERSION,
    COMPONENT_BENTO,
    LABEL_MODEL,
    LABEL_ROLE,
    LABEL_VARIANT,
    owned_labels,
    variant_name,
)
from rollforward.observed import Manifest
from rollforward.pod_lifecycle import (
    MIN_READY_SECONDS,
    TERMINATION_GRACE_SECONDS,
    graceful_stop,
    rolling_update,
)
from rollforward.pod_security import (
    TMP_PATH,
    container_security_context,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from rollforward.serving.contract import (
    DEFAULT_PORT,
    ENV_MODEL,
    ENV_SEGMENT_FIELD,
    ENV_VARIANT,
    ENV_VERSION,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
)
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedVariant

BENTO_USER = 65532
"""The bento runtime image's user (images/bento-runtime), set explicitly on bento pods."""
ENV_BENTOML_HOME = "BENTOML_HOME"
BENTOML_HOME = f"{TMP_PATH}/bentoml"
"""BentoML's store, in the /tmp emptyDir: the root filesystem is read-only."""


def owner_reference(deployment: ModelDeployment) -> Manifest:
    """Makes the ModelDeployment own a child, so deleting it garbage-collects the child."""
    return {
        "apiVersion": deployment.api_version,
        "kind": deployment.kind,
        "name": deployment.metadata.name,
        "uid": deployment.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_desired_hash(manifest: Manifest) -> Manifest:
    """Stamp a manifest with the hash of its own content.

    Comparing this hash with the live object's annotation tells whether the child is what we
    want without comparing fields the API server defaults, so a resync writes nothing.
    """
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    annotations = {**manifest["metadata"].get("annotations", {}), ANNOTATION_DESIRED_HASH: digest}
    return {**manifest, "metadata": {**manifest["metadata"], "annotations": annotations}}


def child_metadata(
    deployment: ModelDeployment, name: str, labels: dict[str, str], annotations: dict[str, str]
) -> Manifest:
    return {
        "name": name,
        "namespace": deployment.metadata.namespace,
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [owner_reference(deployment)],
    }


def variant_labels(deployment: ModelDeployment, variant: ServedVariant) -> dict[str, str]:
    return {
        **owned_labels(deployment.metadata.name, COMPONENT_BENTO),
        LABEL_VARIANT: variant.name,
        LABEL_ROLE: variant.role.value,
        LABEL_MODEL: deployment.spec.model,
    }


def _selector(deployment: ModelDeployment, variant: ServedVariant) -> dict[str, str]:
    labels = variant_labels(deployment, variant)
    return {
        k: labels[k]
        for k in (*owned_labels(deployment.metadata.name, COMPONENT_BENTO), LABEL_VARIANT)
    }


SINGLE_THREADED_MATH = [
    {"name": name, "value": "1"}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
]
"""A bento scores a few records per request, and OpenMP's default (a thread per node core,
spin-waiting at every barrier) makes each parallel region wait for a sibling thread the busy
node has not scheduled: scikit-learn's gradient boosting runs one region per tree, and its
median latency reached 5 s on a loaded 2-core node while the linear champion answered in 30 ms."""


def _serving_container(
    deployment: ModelDeployment, variant: ServedVariant, settings: OperatorSettings
) -> Manifest:
    env = [
        *SINGLE_THREADED_MATH,
        {"name": ENV_MODEL, "value": deployment.spec.model},
        {"name": ENV_VERSION, "value": variant.version},
        {"name": ENV_VARIANT, "value": variant.name},
    ]
    if deployment.spec.drift.segment_label:
        env.append({"name": ENV_SEGMENT_FIELD, "value": deployment.spec.drift.segment_label})
    env.append(key_env(deployment))
    env.append(log_env(deployment))
    if variant.bento:
        env.append({"name": ENV_BENTOML_HOME, "value": BENTOML_HOME})
    container: Manifest = {
        "name": "bento",
        "image": variant.image or settings.bento_image,
        "env": env,
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount()],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH, "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVENESS_PATH, "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "lifecycle": graceful_stop(),
    }
    if variant.bento:
        container["command"] = ["bentoml", "serve", variant.bento]
        container["args"] = ["--host", "0.0.0.0", "--port", str(DEFAULT_PORT)]
    if variant.resources is not None:
        container["resources"] = variant.resources.model_dump(exclude_none=True)
    return container


def variant_deployment(
    deployment: ModelDeployment, variant: ServedVariant, settings: OperatorSettings
) -> Manifest:
    """The Deployment that serves one variant."""
    labels = variant_labels(deployment, variant)
    pod_annotations = {
        ANNOTATION_VERSION: variant.version,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(DEFAULT_PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    manifest: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(
            deployment,
            variant_name(deployment.metadata.name, variant.name),
            labels,
            {ANNOTATION_VERSION: variant.version},
        ),
        "spec": {
            "replicas": variant.replicas,
            "revisionHistoryLimit": deployment.spec.rollout.revision_history_limit,
            "strategy": rolling_update(),
            "minReadySeconds": MIN_READY_SECONDS,
            "selector": {"matchLabels": _selector(deployment, variant)},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
                "spec": _pod_spec(deployment, variant, settings),
            },
        },
    }
    return with_desired_hash(manifest)


def _pod_spec(
    deployment: ModelDeployment, variant: ServedVariant, settings: OperatorSettings
) -> Manifest:
    pod_spec: Manifest = {
        "securityContext": pod_security_context(BENTO_USER),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "containers": [_serving_container(deployment, variant, settings)],
        "volumes": [tmp_volume()],
    }
    store = store_for(deployment, settings)
    if variant.bento and store is not None:
        pod_spec = with_fetched_bento(pod_spec, variant.bento, store, settings.bento_image, "bento")
    return pod_spec


def variant_service(deployment: ModelDeployment, variant: ServedVariant) -> Manifest:
    """The ClusterIP Service in front of one variant's pods."""
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(
            deployment,
            variant_name(deployment.metadata.name, variant.name),
            variant_labels(deployment, variant),
            {},
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(deployment, variant),
            "ports": [{"name": "http", "port": DEFAULT_PORT, "targetPort": "http"}],
        },
    }
    return with_desired_hash(manifest)


def service_host(deployment: ModelDeployment, variant: str) -> str:
    """In-cluster host:port of a variant's Service, as routers address it."""
    name = variant_name(deployment.metadata.name, variant)
    return f"{name}.{deployment.metadata.namespace}.svc:{DEFAULT_PORT}"
