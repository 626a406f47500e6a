"""A real S3 server for the tests and the dev environment: versitygw over a plain directory.

versitygw (built by `make cluster-bin`) is an S3 gateway whose `posix` backend maps each
top-level directory to a bucket, so a bento the store holds is also a file one can look at.
It listens on a free loopback port and serves one bucket, created through the S3 API.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devenv.cluster import ClusterBinaries
from devenv.processes import ManagedProcess, free_port
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.objectstore.sigv4 import EMPTY_SHA256, Credentials, sign

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """A running versitygw: where it is, its root credentials and its bucket."""

    endpoint: str
    bucket: str
    credentials: Credentials
    root: Path
    region: str = REGION

    def store(self, credentials: Credentials | None = None) -> S3Store:
        """A client of the bucket, with the root credentials unless others are given."""
        return S3Store(self.endpoint, self.bucket, self.region, credentials or self.credentials)

    def store_env(self, prefix: str = "bentos") -> dict[str, str]:
        """The environment a pod or Job gets for this store (location and credentials)."""
        return {
            "ROLLFORWARD_BENTO_STORE_ENDPOINT": self.endpoint,
            "ROLLFORWARD_BENTO_STORE_BUCKET": self.bucket,
            "ROLLFORWARD_BENTO_STORE_PREFIX": prefix,
            "ROLLFORWARD_BENTO_STORE_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
        }


def create_bucket(endpoint: str, bucket: str, credentials: Credentials) -> None:
    host = endpoint.split("://", 1)[1].rstrip("/")
    signed = sign(
        "PUT",
        f"/{bucket}",
        {},
        {"host": host, "x-amz-content-sha256": EMPTY_SHA256},
        EMPTY_SHA256,
        credentials,
        REGION,
        datetime.now(UTC),
    )
    request = urllib.request.Request(
        f"{endpoint}/{bucket}", data=b"", method="PUT", headers=signed.headers
    )
    with urllib.request.urlopen(request, timeout=10):
        return


def bucket_answers(endpoint: str, bucket: str, credentials: Credentials) -> bool:
    """Create `bucket`; True once the server answers (also when the bucket exists)."""
    try:
        create_bucket(endpoint, bucket, credentials)
    except urllib.error.HTTPError as error:
        return error.code == 409  # already there (a retry after a slow start)
    return True


@contextlib.contextmanager
def running_s3(workdir: Path | None = None, bucket: str = "bentos") -> Iterator[S3Server]:
    """Start versitygw on a free loopback port with a fresh directory and one bucket."""
    with contextlib.ExitStack() as stack:
        base = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="s3-")))
        root = base / "s3-root"
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        credentials = Credentials(f"rf{secrets.token_hex(6)}", secrets.token_hex(20))
        # Metadata (owner, ACL) goes to a sidecar directory: tmpfs may lack user xattrs.
        argv = [str(ClusterBinaries.from_environment().path("versitygw")),
                "--port", f"127.0.0.1:{port}", "--region", REGION, "--quiet",
                "--access", credentials.access_key, "--secret", credentials.secret_key,
                "posix", "--sidecar", str(base / "s3-meta"), str(root)]  # fmt: skip
        process = ManagedProcess(
            name="versitygw",
            argv=argv,
            log_path=base / "versitygw.log",
            die_with_parent=True,
        )
        (base / "s3-meta").mkdir(exist_ok=True)
        process.start()
        stack.callback(process.stop)
        endpoint = f"http://127.0.0.1:{port}"
        process.wait_until_ready(lambda: bucket_answers(endpoint, bucket, credentials), 30)
        yield S3Server(endpoint, bucket, credentials, root)
