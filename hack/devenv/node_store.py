"""The bento store of the real node: versitygw inside the node's network namespace.

    with RealNodeCluster(tmp) as node, running_node_store(node, home, ["upsell:v1"]) as store:
        node.cluster.apply(store.secret("my-namespace"))
        settings = OperatorSettings(**store.operator_settings())

versitygw listens on the node's own address (`10.250.0.1`), which pods reach through their
default route (the pod bridge's gateway is the node), and which the host cannot reach at all:
host-side code talks to it from a thread inside the namespace (`NodeStore.call`). Bentos are
pushed with the product's own CLI (`python -m rollforward.serving.bento_store push`), run
inside the namespace, exactly as a retraining Job exports its bento.

The store's process lives in the node's namespace and its files under the node's directory,
so it stops with the node; `running_node_store` also stops it itself on exit.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from devenv.bento import bentoml_env
from devenv.cluster import ClusterBinaries
from devenv.netns import NetworkNamespace
from devenv.node import RealNodeCluster
from devenv.processes import ManagedProcess, free_port
from devenv.s3 import REGION, S3Server, bucket_answers
from rollforward.serving.objectstore.sigv4 import Credentials

T = TypeVar("T")

BUCKET = "bentos"
PREFIX = "bentos"
SECRET_NAME = "bento-store"
"""The credentials Secret's default name (chart value `bentoStore.credentialsSecret`)."""


@dataclass(frozen=True)
class NodeStore:
    """A running versitygw in the node's namespace, reachable from pods at `endpoint`."""

    server: S3Server
    netns: NetworkNamespace
    prefix: str = PREFIX

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def bucket(self) -> str:
        return self.server.bucket

    @property
    def credentials(self) -> Credentials:
        return self.server.credentials

    def call(self, function: Callable[[S3Server], T]) -> T:
        """Run `function(server)` from inside the namespace (the host has no route to it),
        e.g. `store.call(lambda s: s.store().head(key))`."""
        return self.netns.call(lambda: function(self.server))

    def operator_settings(self, secret: str | None = SECRET_NAME) -> dict[str, Any]:
        """Keyword arguments of OperatorSettings naming this store (and its Secret)."""
        return {
            "bento_store_endpoint": self.endpoint,
            "bento_store_bucket": self.bucket,
            "bento_store_prefix": self.prefix,
            "bento_store_region": self.server.region,
            "bento_store_secret": secret,
        }

    def operator_env(self, secret: str | None = SECRET_NAME) -> dict[str, str]:
        """The same as the operator's environment (ROLLFORWARD_BENTO_STORE_*)."""
        return {
            f"ROLLFORWARD_{key.upper()}": str(value)
            for key, value in self.operator_settings(secret).items()
            if value is not None
        }

    def helm_values(self, secret: str | None = SECRET_NAME) -> dict[str, Any]:
        """The chart's `bentoStore` values for this store."""
        return {
            "bentoStore": {
                "endpoint": self.endpoint,
                "bucket": self.bucket,
                "prefix": self.prefix,
                "region": self.server.region,
                "credentialsSecret": secret or "",
            }
        }

    def secret_data(self, credentials: Credentials | None = None) -> dict[str, str]:
        """The keys of the credentials Secret (named like the AWS SDKs' variables)."""
        used = credentials or self.credentials
        return {"AWS_ACCESS_KEY_ID": used.access_key, "AWS_SECRET_ACCESS_KEY": used.secret_key}

    def secret(
        self, namespace: str, name: str = SECRET_NAME, credentials: Credentials | None = None
    ) -> dict[str, Any]:
        """The credentials Secret a ModelDeployment's namespace needs (wrong ones on request)."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": self.secret_data(credentials),
        }

    def pod_env(self) -> dict[str, str]:
        """What a bento pod or Job gets from the operator, with the Secret's values resolved."""
        return {**self.server.store_env(self.prefix)}

    def push(self, bentoml_home: Path, tags: Sequence[str], timeout: float = 300) -> None:
        """Export `tags` from the BentoML store at `bentoml_home` into the bucket, with the
        product's push CLI run inside the namespace."""
        for tag in tags:
            argv = self.netns.wrap(
                [sys.executable, "-m", "rollforward.serving.bento_store", "push", tag]
            )
            env = bentoml_env(bentoml_home, self.pod_env())
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"pushing {tag} to the node's store failed:\n{done.stderr}")


@contextlib.contextmanager
def running_node_store(
    node: RealNodeCluster,
    bentoml_home: Path | None = None,
    tags: Sequence[str] = (),
    bucket: str = BUCKET,
) -> Iterator[NodeStore]:
    """Start versitygw on the node's address, create `bucket`, push `tags` from
    `bentoml_home`; stop it on exit (its files go with the node's directory)."""
    netns = node.netns
    port = netns.call(lambda: free_port(netns.node_ip))
    base = node.base_dir / f"bento-store-{port}"
    root, meta = base / "s3-root", base / "s3-meta"
    root.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    credentials = Credentials(f"rf{secrets.token_hex(6)}", secrets.token_hex(20))
    argv = [str(ClusterBinaries.from_environment().path("versitygw")),
            "--port", f"{netns.node_ip}:{port}", "--region", REGION, "--quiet",
            "--access", credentials.access_key, "--secret", credentials.secret_key,
            "posix", "--sidecar", str(meta), str(root)]  # fmt: skip
    process = ManagedProcess(
        name="versitygw",
        argv=netns.wrap(argv),
        log_path=base / "versitygw.log",
        die_with_parent=node.cluster.die_with_parent,
    )
    endpoint = f"http://{netns.node_ip}:{port}"
    process.start()
    try:
        process.wait_until_ready(
            lambda: netns.call(lambda: bucket_answers(endpoint, bucket, credentials)), 30
        )
        store = NodeStore(S3Server(endpoint, bucket, credentials, root), netns)
        if tags:
            if bentoml_home is None:
                raise ValueError("pushing bentos needs the BentoML home that holds them")
            store.push(bentoml_home, tags)
        yield store
    finally:
        process.stop()
