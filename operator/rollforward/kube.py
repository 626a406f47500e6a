"""The Kubernetes I/O adapter: read children, write children, status and Events.

Every write goes through here, with one field manager, and is counted in
rollforward_operator_api_writes_total, so tests and benchmarks can prove that a
steady-state resync writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import dynamic
from kubernetes.dynamic.exceptions import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ResourceNotFoundError,
)

from rollforward.api import API_VERSION, KIND, PLURAL, ModelDeployment
from rollforward.cache import slim
from rollforward.events import Action, Event, EventAggregator
from rollforward.metrics import OperatorMetrics
from rollforward.naming import (
    COMPONENT_RETRAINING,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    children_selector,
)
from rollforward.observed import ChildKey, Manifest, Observed

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 250
"""Objects per page of a relist: bounds the memory one list takes while it is read."""

_CHILD_KINDS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "Job": "batch/v1",
    "Pod": "v1",
}


def load_api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: the kubeconfig (KUBECONFIG or ~/.kube)."""
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except k8s_config.ConfigException:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return k8s.ApiClient(configuration=configuration)


class KubeAdapter:
    """Reads and writes for the reconcile of ModelDeployments."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        field_manager: str = "rollforward",
        metrics: OperatorMetrics | None = None,
        events: EventAggregator | None = None,
    ) -> None:
        self._dynamic = dynamic.DynamicClient(api_client)
        # The DynamicClient's discovery cache is not thread-safe: a lookup that misses (e.g.
        # HTTPRoute without Gateway API) resets the cache while other reconcile threads search
        # it (KeyError: 'resources'). Lookups are serialized; the API calls themselves are not.
        self._discovery_lock = threading.Lock()
        self._field_manager = field_manager
        self._metrics = metrics or OperatorMetrics()
        self._gateway_installed = False
        self._gateway_checked_at: float | None = None
        self._events = EventAggregator() if events is None else events

    def _count_write(self, verb: str, kind: str) -> None:
        self._metrics.api_writes.labels(verb=verb, kind=kind).inc()

    def _count_read(self, verb: str, kind: str) -> None:
        self._metrics.api_reads.labels(verb=verb, kind=kind).inc()

    def _lookup(self, api_version: str, kind: str) -> Any:
        with self._discovery_lock:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def _resource(self, kind: str) -> Any:
        return self._lookup(_CHILD_KINDS[kind], kind)

    def gateway_api_installed(self) -> bool:
        """Whether HTTPRoute is served, rechecked once a minute: a discovery miss makes the
        client rebuild its whole discovery cache, which cost each reconcile ~24 requests."""
        now = time.monotonic()
        if self._gateway_checked_at is None or now - self._gateway_checked_at > 60:
            try:
                self._resource("HTTPRoute")
                self._gateway_installed = True
            except ResourceNotFoundError:
                self._gateway_installed = False
            self._gateway_checked_at = now
        return self._gateway_installed

    # --- reads -------------------------------------------------------------------------------

    def get_model_deployment(self, namespace: str, name: str) -> Manifest | None:
        resource = self._lookup(API_VERSION, KIND)
        self._count_read("get", KIND)
        try:
            found: Manifest = resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        return found

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded; None when it does not exist or a value is not text.

        A plain GET of one named Secret: the operator never lists or watches Secrets.
        """
        self._count_read("get", "Secret")
        try:
            found = self._lookup("v1", "Secret").get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        except ForbiddenError:
            # Outside the operator's RBAC (a namespace it has no Role in): as good as absent,
            # and the condition says which Secret; never a crashed reconcile.
            log.warning("reading Secret %s/%s is forbidden", namespace, name)
            return None
        try:
            return {
                key: base64.b64decode(value).decode()
                for key, value in (found.get("data") or {}).items()
            }
        except (binascii.Error, UnicodeDecodeError):
            return None

    def list_children(
        self, namespace: str, owner: str, kinds: tuple[str, ...]
    ) -> dict[ChildKey, Manifest]:
        children: dict[ChildKey, Manifest] = {}
        for kind in kinds:
            try:
                resource = self._resource(kind)
            except ResourceNotFoundError:
                continue
            self._count_read("list", kind)
            listed = resource.get(namespace=namespace, label_selector=children_selector(owner))
            for item in listed.items:
                body = item.to_dict()
                children[(kind, body["metadata"]["name"])] = body
        return children

    def retraining_pods(self, namespace: str, owner: str) -> dict[str, Manifest]:
        """The newest pod of each retraining Job, by Job name."""
        selector = f"{children_selector(owner)},{LABEL_COMPONENT}={COMPONENT_RETRAINING}"
        self._count_read("list", "Pod")
        listed = self._resource("Pod").get(namespace=namespace, label_selector=selector)
        pods: dict[str, Manifest] = {}
        for item in sorted(listed.items, key=lambda p: p.metadata.creationTimestamp or ""):
            body = item.to_dict()
            job = (body["metadata"].get("labels") or {}).get("job-name")
            if job:
                pods[job] = body
        return pods

    def observe(self, deployment: ModelDeployment, kinds: tuple[str, ...]) -> Observed:
        gateway = self.gateway_api_installed()
        wanted = tuple(k for k in kinds if k != "HTTPRoute" or gateway)
        return Observed(
            children=self.list_children(
                deployment.metadata.namespace, deployment.metadata.name, wanted
            ),
            gateway_api_installed=gateway,
        )

    def list_kind(self, kind: str, namespace: str | None = None) -> tuple[Iterator[Manifest], str]:
        """Every ModelDeployment, or every child of `kind` we manage, in `namespace` (None:
        all), with the list's resourceVersion: what rebuilds the cache.

        Read in pages of plain JSON, each slimmed as it comes (rollforward.cache.slim), and
        handed out one by one: the client's ResourceInstance wrapping of one whole list of
        3,000 Deployments took 212 MB at its peak, the largest part of the operator's peak
        memory at 1,000 resources; a page takes a few MB."""
        resource = self._lookup(API_VERSION, KIND) if kind == KIND else self._resource(kind)
        selector = None if kind == KIND else f"{LABEL_MANAGED_BY}={MANAGED_BY}"

        def page(token: str | None) -> dict[str, Any]:
            self._count_read("list", kind)
            response = resource.get(
                namespace=namespace,
                label_selector=selector,
                limit=LIST_PAGE_SIZE,
                _continue=token,
                serialize=False,
            )
            listed: dict[str, Any] = json.loads(response.data)
            return listed

        first = page(None)
        # Every page of a paginated list is of one snapshot: the first page's version is the
        # list's version.
        return _items(first, page, kind), str(first["metadata"]["resourceVersion"])

    # --- writes ------------------------------------------------------------------------------

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply with our field manager: we own exactly the fields we set.
        Returns the object as stored (for the cache)."""
        kind = manifest["kind"]
        self._count_write("apply", kind)
        applied = self._resource(kind).server_side_apply(
            body=manifest,
            name=manifest["metadata"]["name"],
            namespace=manifest["metadata"]["namespace"],
            field_manager=self._field_manager,
            force_conflicts=True,
        )
        stored: Manifest = applied.to_dict()
        return stored

    def create(self, manifest: Manifest) -> None:
        """A plain create: for objects written once and never again (the feedback key)."""
        kind = manifest["kind"]
        self._count_write("create", kind)
        with contextlib.suppress(ConflictError):  # another replica or an earlier try made it
            self._lookup(manifest["apiVersion"], kind).create(
                body=manifest,
                namespace=manifest["metadata"]["namespace"],
                field_manager=self._field_manager,
            )

    def delete(self, namespace: str, kind: str, name: str, propagation: str = "Background") -> None:
        self._count_write("delete", kind)
        with contextlib.suppress(NotFoundError):
            self._resource(kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": propagation}
            )

    def patch_status(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        """A merge patch of the status subresource; spec is never written. Returns the
        resource as stored (for the cache)."""
        self._count_write("patch", "ModelDeployment/status")
        resource = self._lookup(API_VERSION, KIND)
        patched = resource.status.patch(
            body={"status": patch},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            field_manager=self._field_manager,
        )
        stored: Manifest = patched.to_dict()
        return stored

    def post_event(
        self, deployment: ModelDeployment, event: Event, now: datetime | None = None
    ) -> None:
        """Create the Event, or count a repeat of it (see `EventAggregator`)."""
        at = now or datetime.now(UTC)
        meta = deployment.metadata
        key = (meta.namespace, meta.name, event.type, event.reason, event.message)
        decision = self._events.decide(key, at)
        if decision.action is Action.SKIP:
            return
        try:
            if decision.action is Action.PATCH and decision.name is not None:
                self._patch_event(meta.namespace, decision.name, decision.count, at)
                return
            self._events.created(key, self._create_event(deployment, event, at))
        except NotFoundError:  # the Event expired: the next occurrence creates a new one
            self._events.forget(key)
        except Exception as error:  # an Event is a courtesy; it must never fail a reconcile
            self._events.created(key, None)
            log.warning("could not post Event %s: %s", event.reason, error)

    def _patch_event(self, namespace: str, name: str, count: int, at: datetime) -> None:
        self._count_write("patch", "Event")
        self._lookup("v1", "Event").patch(
            body={"count": count, "lastTimestamp": _stamp(at)},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def _create_event(self, deployment: ModelDeployment, event: Event, at: datetime) -> str:
        self._count_write("create", "Event")
        stamp = _stamp(at)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{deployment.metadata.name}.",
                "namespace": deployment.metadata.namespace,
            },
            "involvedObject": {
                "apiVersion": deployment.api_version,
                "kind": deployment.kind,
                "name": deployment.metadata.name,
                "namespace": deployment.metadata.namespace,
                "uid": deployment.metadata.uid,
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": "rollforward"},
            "reportingComponent": "rollforward.io/operator",
            "reportingInstance": "rollforward",
        }
        created = self._lookup("v1", "Event").create(
            body=body, namespace=deployment.metadata.namespace
        )
        name: str = created.metadata.name
        return name


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _items(
    first: dict[str, Any], page: Callable[[str | None], dict[str, Any]], kind: str
) -> Iterator[Manifest]:
    """The items of a paginated list, page after page, slimmed, each with its kind and
    apiVersion (a list's items carry neither)."""
    current: dict[str, Any] | None = first
    del first  # only `current` holds a page, so a page read is freed once it is handed out
    while current is not None:
        token = (current.get("metadata") or {}).get("continue") or None
        api_version = current.get("apiVersion")
        items = current.get("items") or []
        current = None
        for item in items:
            item.setdefault("kind", kind)
            if api_version:
                item.setdefault("apiVersion", api_version)
            yield slim(item)
        del items
        if token:
            current = page(token)


__all__ = ["PLURAL", "KubeAdapter", "load_api_client"]
