"""Deterministic names and labels of everything the operator creates.

A retry, a restart or a second replica computes the same names, so it can never create a
second Deployment or Job for the same purpose.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "rollforward"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MODEL_DEPLOYMENT = "rollforward.io/model-deployment"
LABEL_VARIANT = "rollforward.io/variant"
LABEL_ROLE = "rollforward.io/role"
LABEL_MODEL = "rollforward.io/model"
LABEL_TRIGGER = "rollforward.io/trigger-id"
ANNOTATION_DESIRED_HASH = "rollforward.io/desired-hash"
ANNOTATION_VERSION = "rollforward.io/version"
ANNOTATION_CONFIG_CHECKSUM = "rollforward.io/config-checksum"

COMPONENT_BENTO = "bento"
COMPONENT_ROUTER = "router"
COMPONENT_RETRAINING = "retraining"

CANDIDATE_VARIANT = "candidate"
"""Name of the variant a retrained candidate runs as during its canary."""

_MAX_NAME = 63


def _fit(name: str) -> str:
    """Keep a name within 63 characters; long names get a hash suffix instead of a cut."""
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9].rstrip('-')}-{digest}"


def variant_name(model_deployment: str, variant: str) -> str:
    """Deployment and Service of one variant."""
    return _fit(f"{model_deployment}-{variant}")


def feedback_key_name(model_deployment: str) -> str:
    """The Secret with the key that signs this ModelDeployment's prediction ids."""
    return _fit(f"{model_deployment}-feedback-key")


def router_name(model_deployment: str) -> str:
    """Deployment, ConfigMap, Service or HTTPRoute of the router."""
    return _fit(f"{model_deployment}-router")


def job_name(model_deployment: str, trigger_id: str, attempt: int) -> str:
    """The retraining Job of one attempt of one trigger."""
    return _fit(f"{model_deployment}-retrain-{trigger_id[:10]}-{attempt}")


def label_value(text: str) -> str:
    """A string made safe for a label value (bento tags contain ':')."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:_MAX_NAME].strip("-_.")
    return cleaned or "none"


def owned_labels(model_deployment: str, component: str) -> dict[str, str]:
    """Labels on every child: how the operator finds its children again."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "rollforward",
        LABEL_COMPONENT: component,
        LABEL_MODEL_DEPLOYMENT: model_deployment,
    }


def children_selector(model_deployment: str) -> str:
    return f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_MODEL_DEPLOYMENT}={model_deployment}"
