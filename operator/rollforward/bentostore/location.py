"""Which store applies to a ModelDeployment, and the environment a pod receives to reach it
(the key layout and the variable names are rollforward.serving.objectstore.layout). Pure."""

from __future__ import annotations

from typing import Any

from rollforward.api import ModelDeployment
from rollforward.api.spec import BentoStoreSpec
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
