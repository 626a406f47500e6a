"""Where a bento lives: which store applies to a ModelDeployment, the key of a tag, and the
environment a pod receives to reach the store. Pure."""

from __future__ import annotations

from typing import Any, Final

from rollforward.api import ModelDeployment
from rollforward.api.spec import BentoStoreSpec
from rollforward.settings import OperatorSettings

# The environment contract of the store, shared by the operator, the init container of a
# bento pod and the retraining entrypoint.
ENV_ENDPOINT: Final = "ROLLFORWARD_BENTO_STORE_ENDPOINT"
ENV_BUCKET: Final = "ROLLFORWARD_BENTO_STORE_BUCKET"
ENV_PREFIX: Final = "ROLLFORWARD_BENTO_STORE_PREFIX"
ENV_REGION: Final = "ROLLFORWARD_BENTO_STORE_REGION"
# Secret keys, named like the AWS SDKs' variables so the Secret also works with their tools.
ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"
BENTO_SUFFIX: Final = ".bento"


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


def key_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def bento_key(prefix: str, tag: str) -> str:
    """`<prefix>/<name>/<version>.bento` for a tag name:version (':' is awkward in URLs)."""
    name, _, version = tag.partition(":")
    return f"{key_prefix(prefix)}{name}/{version or 'latest'}{BENTO_SUFFIX}"


def tag_of_key(prefix: str, key: str) -> str | None:
    """The tag a stored key holds, or None for a key that is not a bento of ours."""
    head = key_prefix(prefix)
    if not key.startswith(head) or not key.endswith(BENTO_SUFFIX):
        return None
    name, sep, version = key[len(head) : -len(BENTO_SUFFIX)].partition("/")
    if not sep or not name or not version or "/" in version:
        return None
    return f"{name}:{version}"


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
