"""Moves a bento between the local BentoML store and the bento store (S3).

    python -m rollforward.serving.bento_store pull upsell:v1   # init container of a bento pod
    python -m rollforward.serving.bento_store push upsell:v2   # retraining entrypoint

The location comes from the environment the operator sets (rollforward.serving.objectstore.layout);
BENTOML_HOME says which local store. On failure `pull` writes a termination message whose
first word is the machine-readable reason (BentoNotFound, BentoStoreForbidden,
BentoStoreUnreachable), so `kubectl describe pod` and the operator can tell them apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollforward.serving.contract import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_TERMINATION_MESSAGE_PATH,
)
from rollforward.serving.objectstore.client import ObjectStore, StoreError
from rollforward.serving.objectstore.layout import bento_key
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.objectstore.sigv4 import Credentials

BENTO_TRANSFER_FAILED = "BentoTransferFailed"
"""The reason of a failure that is not the store's: the bento could not be exported or imported."""


class StoreSettings(BaseSettings):
    """The store's location (ROLLFORWARD_BENTO_STORE_*) and the AWS_* credentials."""

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_BENTO_STORE_", extra="ignore")

    endpoint: str
    bucket: str
    prefix: str = "bentos"
    region: str = "us-east-1"
    access_key_id: str = Field(default="", validation_alias="AWS_ACCESS_KEY_ID")
    secret_access_key: str = Field(default="", validation_alias="AWS_SECRET_ACCESS_KEY")
    termination_message_path: Path = Field(
        default=Path(DEFAULT_TERMINATION_MESSAGE_PATH),
        validation_alias=ENV_TERMINATION_MESSAGE_PATH,
    )

    def store(self) -> S3Store:
        credentials = (
            Credentials(self.access_key_id, self.secret_access_key) if self.access_key_id else None
        )
        return S3Store(self.endpoint, self.bucket, self.region, credentials, timeout=60.0)


def push(tag: str, store: ObjectStore, prefix: str) -> str:
    """Export a bento from the local store and upload it; returns the key it was stored at."""
    import bentoml

    key = bento_key(prefix, tag)
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "bento.bento"
        bentoml.export_bento(tag, str(archive))
        store.put(key, archive)
    return key


def pull(tag: str, store: ObjectStore, prefix: str, scratch_dir: Path | None = None) -> str:
    """Download a bento and import it into the local store (BENTOML_HOME); returns its key."""
    import bentoml

    key = bento_key(prefix, tag)
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir) as scratch:
        archive = Path(scratch) / "bento.bento"
        store.get(key, archive)
        bentoml.import_bento(str(archive))
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollforward.serving.bento_store")
    parser.add_argument("action", choices=("pull", "push"))
    parser.add_argument("tag", help="bento tag, name:version")
    args = parser.parse_args(argv)
    settings = StoreSettings()
    store = settings.store()
    try:
        if args.action == "pull":
            # Inside BENTOML_HOME (an emptyDir): the root filesystem may be read-only.
            home = os.environ.get("BENTOML_HOME")
            key = pull(args.tag, store, settings.prefix, Path(home) if home else None)
        else:
            key = push(args.tag, store, settings.prefix)
    except StoreError as error:
        return _failed(
            settings, f"{error.presence.value}: {args.action} {args.tag}: {error.detail}"
        )
    except Exception as error:
        # The process boundary: whatever broke (a corrupt archive, a full disk), say so.
        traceback.print_exc()
        return _failed(settings, f"{BENTO_TRANSFER_FAILED}: {args.action} {args.tag}: {error}")
    print(f"{args.action} {args.tag}: s3://{settings.bucket}/{key}", file=sys.stderr)
    return 0


def _failed(settings: StoreSettings, message: str) -> int:
    _write_termination(settings.termination_message_path, message)
    print(message, file=sys.stderr)
    return 1


def _write_termination(path: Path, message: str) -> None:
    try:
        path.write_text(message[:4000])
    except OSError as error:
        # Outside a pod the path may not be writable; stderr still carries the reason.
        print(f"cannot write termination message to {path}: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
