"""Where a bento lives in the store, and the environment that names the store. Pure.

The operator writes this environment into bento pods and retraining Jobs; the init container
and the retraining entrypoint read it (rollforward.serving.bento_store).
"""

from __future__ import annotations

from typing import Final

ENV_ENDPOINT: Final = "ROLLFORWARD_BENTO_STORE_ENDPOINT"
ENV_BUCKET: Final = "ROLLFORWARD_BENTO_STORE_BUCKET"
ENV_PREFIX: Final = "ROLLFORWARD_BENTO_STORE_PREFIX"
ENV_REGION: Final = "ROLLFORWARD_BENTO_STORE_REGION"
# Secret keys, named like the AWS SDKs' variables so the Secret also works with their tools.
ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"
BENTO_SUFFIX: Final = ".bento"


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
