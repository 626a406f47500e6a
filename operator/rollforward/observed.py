"""A snapshot of the children as the API server last showed them, and readings of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]
ChildKey = tuple[str, str]
"""(kind, name): children of one ModelDeployment live in its namespace."""


@dataclass(frozen=True)
class Observed:
    """Everything gather read for one ModelDeployment."""

    children: dict[ChildKey, Manifest] = field(default_factory=dict)
    gateway_api_installed: bool = False

    def get(self, kind: str, name: str) -> Manifest | None:
        return self.children.get((kind, name))


@dataclass(frozen=True)
class DeploymentHealth:
    available: bool
    ready_replicas: int
    up_to_date: bool
    message: str
    serving: bool = False
    """Available with every updated replica ready: traffic may go to it (see `serving`)."""


def deployment_health(deployment: Manifest | None) -> DeploymentHealth:
    """Read a Deployment's status the way `kubectl rollout status` does."""
    if deployment is None:
        return DeploymentHealth(False, 0, False, "Deployment does not exist yet")
    spec = deployment.get("spec", {})
    status = deployment.get("status", {}) or {}
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    available_replicas = int(status.get("availableReplicas", 0) or 0)
    generation = deployment.get("metadata", {}).get("generation", 0)
    observed_generation = status.get("observedGeneration", 0)
    up_to_date = (
        observed_generation >= generation
        and updated >= wanted
        and int(status.get("replicas", 0) or 0) <= wanted
    )
    conditions = {c.get("type"): c for c in status.get("conditions", []) or []}
    if wanted == 0:
        return DeploymentHealth(True, ready, up_to_date, "scaled to zero")
    if available_replicas == 0:
        progressing = conditions.get("Progressing", {})
        available = conditions.get("Available", {})
        reason = progressing.get("reason") if progressing.get("status") == "False" else None
        detail = progressing.get("message") if reason else available.get("message")
        message = f"{ready}/{wanted} replicas ready"
        if detail:
            message += f"; Deployment says: {detail}"
        return DeploymentHealth(False, ready, up_to_date, message)
    message = f"{ready}/{wanted} replicas ready"
    return DeploymentHealth(True, ready, up_to_date, message, serving(deployment))


def serving(deployment: Manifest | None) -> bool:
    """Whether a Deployment may be given traffic: Available, with every wanted replica
    updated and available and no replica of an older template left running.

    This is what `kubectl rollout status` waits for, plus the Available condition. A
    Deployment that still runs an older version (a reused name, a rolling update) does not
    serve, so its users never reach a half-rolled variant; zero wanted replicas never serve.
    """
    if deployment is None:
        return False
    spec = deployment.get("spec", {})
    status = deployment.get("status", {}) or {}
    wanted = int(spec.get("replicas", 1))
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", []) or []}
    return (
        wanted > 0
        and int(status.get("observedGeneration", 0) or 0)
        >= int(deployment.get("metadata", {}).get("generation", 0) or 0)
        and int(status.get("updatedReplicas", 0) or 0) >= wanted
        and int(status.get("availableReplicas", 0) or 0) >= wanted
        and int(status.get("replicas", 0) or 0) <= wanted
        and conditions.get("Available") == "True"
    )


def drained(deployment: Manifest | None) -> bool:
    """Whether a Deployment serves and no pod of it is still terminating.

    A terminating pod may still answer requests (preStop, graceful shutdown), and a
    router's old pod routes by its old config until it is gone. `terminatingReplicas`
    comes with Kubernetes 1.35 (beta, on by default); where the API server does not report
    it, an absent count is taken as zero and `serving` alone decides.
    """
    status = (deployment or {}).get("status", {}) or {}
    return serving(deployment) and int(status.get("terminatingReplicas", 0) or 0) == 0
