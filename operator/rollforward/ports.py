"""The two external systems a reconcile talks to, as small Protocols. Pure.

The adapters (rollforward.kube, rollforward.prometheus) implement them against the real
API server and Prometheus; unit tests pass in-memory fakes (tests/fixtures/fakes.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from rollforward.api import ModelDeployment
from rollforward.events import Event
from rollforward.measurements import QueryResult
from rollforward.observed import Manifest, Observed
from rollforward.prometheus_access import PrometheusAccess


class MetricsSource(Protocol):
    def query(
        self, url: str, promql: str, at: datetime, access: PrometheusAccess | None = None
    ) -> QueryResult:
        """Evaluate `promql` at `at` on the Prometheus at `url`, with `access`'s TLS and
        credentials (system CAs and none when it is None)."""
        ...


class Cluster(Protocol):
    """The Kubernetes reads and writes of one reconcile."""

    def observe(self, deployment: ModelDeployment, kinds: tuple[str, ...]) -> Observed:
        """The children of `deployment` of these kinds."""
        ...

    def retraining_pods(self, namespace: str, owner: str) -> dict[str, Manifest]:
        """The newest pod of each retraining Job, by Job name."""
        ...

    def apply(self, manifest: Manifest) -> object:
        """Create or update a child (server-side apply); an adapter may return the server's
        answer (the cache keeps it), and the reconcile does not read it."""
        ...

    def delete(self, namespace: str, kind: str, name: str) -> None:
        """Delete a child; a missing child is not an error."""
        ...

    def patch_status(self, namespace: str, name: str, patch: Manifest) -> object:
        """Merge-patch the status subresource (the return value is not read)."""
        ...

    def create(self, manifest: Manifest) -> None:
        """Create an object if none of that name exists; an existing one is left as it is."""
        ...

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded data, or None when it does not exist."""
        ...

    def post_event(self, deployment: ModelDeployment, event: Event) -> None:
        """Emit a Kubernetes Event on the resource; never fails the reconcile."""
        ...
