"""The per-ModelDeployment key that signs prediction ids, kept in a Secret. Pure.

One Secret per ModelDeployment (not per variant or version): every replica of every version
reads the same key, so an id issued by the champion verifies on the candidate, after a
restart, and after a promotion. The operator creates it once, with a random key, and never
rewrites it (a new key would invalidate every outstanding prediction id); it is owned by the
ModelDeployment, so it goes when the ModelDeployment goes. To rotate, delete the Secret: the
next reconcile makes a new one (bento pods pick it up when they restart).
"""

from __future__ import annotations

from rollforward.api import ModelDeployment
from rollforward.naming import feedback_key_name, owned_labels
from rollforward.observed import Manifest
from rollforward.serving.contract import ENV_FEEDBACK_SECRET

SECRET_KEY = "key"
COMPONENT_FEEDBACK_KEY = "feedback-key"


def secret_manifest(deployment: ModelDeployment, key: str, owner: Manifest) -> Manifest:
    """The Secret holding `key`, owned by `deployment` (its ownerReference is `owner`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": feedback_key_name(deployment.metadata.name),
            "namespace": deployment.metadata.namespace,
            "labels": owned_labels(deployment.metadata.name, COMPONENT_FEEDBACK_KEY),
            "ownerReferences": [owner],
        },
        "stringData": {SECRET_KEY: key},
    }


def key_env(deployment: ModelDeployment) -> Manifest:
    """The bento container's env var reading the key from the Secret."""
    return {
        "name": ENV_FEEDBACK_SECRET,
        "valueFrom": {
            "secretKeyRef": {"name": feedback_key_name(deployment.metadata.name), "key": SECRET_KEY}
        },
    }
