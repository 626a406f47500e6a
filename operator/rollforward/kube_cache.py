"""The reconcile's view of the cluster, served from the watch-fed cache (rollforward.cache).

Reads come from the cache; writes go to the API server through KubeAdapter, and what the API
server answers goes straight into the cache, so the next reconcile sees its own writes
before the watch echoes them. What is not watched is still read from the API: retraining
pods (only while a Job runs), HTTPRoutes (only where Gateway API is installed) and Secrets
(the feedback key is remembered once it exists: it is never rewritten).
"""

from __future__ import annotations

import logging
import threading

from rollforward.api import KIND, ModelDeployment
from rollforward.cache import ObjectCache, Owner
from rollforward.events import Event
from rollforward.kube import KubeAdapter
from rollforward.observed import Manifest, Observed

log = logging.getLogger(__name__)

CACHED_KINDS = ("Deployment", "Service", "ConfigMap", "Job")
"""The children the operator watches, so the cache holds them."""
FEEDBACK_KEY_SUFFIX = "-feedback-key"


class CachedCluster:
    """The `Cluster` port over a watch-fed cache and the KubeAdapter."""

    def __init__(self, kube: KubeAdapter, namespaces: list[str] | None = None) -> None:
        self.kube = kube
        self.cache = ObjectCache()
        self.namespaces: list[str | None] = list(namespaces or []) or [None]
        """Where the operator watches (None: every namespace): what a relist covers."""
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    # --- reads ---------------------------------------------------------------------------

    def model_deployment(self, namespace: str, name: str) -> Manifest | None:
        """The cached resource; a GET only when the watch has not brought it (yet)."""
        cached = self.cache.get(KIND, namespace, name)
        if cached is not None:
            return cached
        found = self.kube.get_model_deployment(namespace, name)
        if found is not None:
            self.cache.upsert(KIND, found)
        return found

    def observe(self, deployment: ModelDeployment, kinds: tuple[str, ...]) -> Observed:
        gateway = self.kube.gateway_api_installed()
        meta = deployment.metadata
        children = self.cache.children(meta.namespace, meta.name, kinds)
        uncached = tuple(k for k in kinds if k not in CACHED_KINDS and k != KIND)
        wanted = tuple(k for k in uncached if k != "HTTPRoute" or gateway)
        if wanted:
            children.update(self.kube.list_children(meta.namespace, meta.name, wanted))
        return Observed(children=children, gateway_api_installed=gateway)

    def retraining_pods(self, namespace: str, owner: str) -> dict[str, Manifest]:
        return self.kube.retraining_pods(namespace, owner)

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        with self._lock:
            known = self._secrets.get((namespace, name))
        if known is not None:
            return known
        found = self.kube.read_secret(namespace, name)
        if found is not None and name.endswith(FEEDBACK_KEY_SUFFIX):
            with self._lock:
                self._secrets[(namespace, name)] = found
        return found

    # --- writes --------------------------------------------------------------------------

    def apply(self, manifest: Manifest) -> None:
        stored = self.kube.apply(manifest)
        if manifest["kind"] in CACHED_KINDS:
            self.cache.upsert(manifest["kind"], stored)

    def delete(self, namespace: str, kind: str, name: str) -> None:
        self.kube.delete(namespace, kind, name)
        self.cache.remove(kind, namespace, name)

    def patch_status(self, namespace: str, name: str, patch: Manifest) -> None:
        self.cache.upsert(KIND, self.kube.patch_status(namespace, name, patch))

    def create(self, manifest: Manifest) -> None:
        self.kube.create(manifest)

    def post_event(self, deployment: ModelDeployment, event: Event) -> None:
        self.kube.post_event(deployment, event)

    # --- the cache's upkeep --------------------------------------------------------------

    def forget(self, namespace: str, name: str) -> None:
        self.cache.remove(KIND, namespace, name)
        with self._lock:
            self._secrets = {k: v for k, v in self._secrets.items() if k[0] != namespace}

    def relist(self) -> set[Owner]:
        """Rebuild the cache from fresh lists (at start, after a watch restarted, and now
        and then): returns the ModelDeployments whose objects changed, to be reconciled."""
        affected: set[Owner] = set()
        for namespace in self.namespaces:
            for kind in (KIND, *CACHED_KINDS):
                listed, version = self.kube.list_kind(kind, namespace)
                affected |= self.cache.replace(kind, listed, version, namespace)
        with self._lock:
            self._secrets.clear()
        log.info("cache rebuilt: %d objects, %d resources changed", len(self.cache), len(affected))
        return affected
