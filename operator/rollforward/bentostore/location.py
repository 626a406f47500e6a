"""Which store applies to a ModelDeployment, the environment a pod receives to reach it (the key
layout and the variable names are rollforward.serving.objectstore.layout), and where in it the
ModelDeployment's prediction log lives. Pure.

The log's location is decided here once, and the same env var goes on the bento containers that
write the log and on the retraining Jobs that read it: they can never disagree. It is keyed by
namespace and name, not by spec.model alone, so two ModelDeployments serving one model (in two
namespaces, or under two names) never train on, or de-duplicate feedback against, each other's
traffic.
"""

from __future__ import annotations

from typing import Any

from rollforward.api import ModelDeployment
from rollforward.api.spec import BentoStoreSpec
from rollforward.serving.contract import DEFAULT_PREDICTION_LOG_PREFIX, ENV_PREDICTION_LOG_PREFIX
from rollforward.serving.objectstore.layout import (
    ACCESS_KEY_ID,
    ENV_BUCKET,
    ENV_ENDPOINT,
    ENV_PREFIX,
    ENV_REGION,
    SECRET_ACCESS_KEY,
)
from rollforward.settings import OperatorSettings


def store_for(deployment: ModelDeployment, settings: OperatorSettings) -> BentoStoreSpec | None:
    """The ModelDeployment's own store, else the operator-wide one, else none."""
    if deployment.spec.bento_store is not None:
        return deployment.spec.bento_store
    if not settings.bento_store_endpoint:
        return None
    return BentoStoreSpec(
        endpoint=settings.bento_store_endpoint,
        bucket=settings.bento_store_bucket,
        prefix=settings.bento_store_prefix,
        region=settings.bento_store_region,
        credentials_secret=settings.bento_store_secret,
    )


def store_env(store: BentoStoreSpec) -> list[dict[str, Any]]:
    """Container env that locates the store, with the credentials from its Secret."""
    env: list[dict[str, Any]] = [
        {"name": ENV_ENDPOINT, "value": store.endpoint},
        {"name": ENV_BUCKET, "value": store.bucket},
        {"name": ENV_PREFIX, "value": store.prefix},
        {"name": ENV_REGION, "value": store.region},
    ]
    if store.credentials_secret:
        env += [
            {
                "name": key,
                "valueFrom": {"secretKeyRef": {"name": store.credentials_secret, "key": key}},
            }
            for key in (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        ]
    return env


def log_prefix(deployment: ModelDeployment) -> str:
    """The root of the ModelDeployment's prediction log and feedback claims in the store's
    bucket, `logs/<namespace>/<name>` (the bentos append `/<model>/...`). Namespaces and names
    are DNS labels, so the key needs no escaping and no two ModelDeployments share it."""
    meta = deployment.metadata
    return f"{DEFAULT_PREDICTION_LOG_PREFIX}/{meta.namespace}/{meta.name}"


def log_env(deployment: ModelDeployment) -> dict[str, Any]:
    """The env var naming the log's root, for bento containers and retraining Jobs alike."""
    return {"name": ENV_PREDICTION_LOG_PREFIX, "value": log_prefix(deployment)}
