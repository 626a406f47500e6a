"""Traffic routers: one module per way of splitting traffic between a model's variants.

Each router turns the served variants into the objects that route to them, and says from
the observed objects whether routing works. The reconcile never knows which one it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rollforward.api import ModelDeployment, Reason, RouterKind
from rollforward.observed import Manifest, Observed
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedVariant


@dataclass(frozen=True)
class RouterPlan:
    """What a router needs to exist, or why it cannot be built."""

    objects: list[Manifest] = field(default_factory=list)
    blocked: tuple[Reason, str] | None = None


class Router(Protocol):
    routes_around_unready_variants: bool
    """Whether a request for a variant with no ready pod is answered by another variant's
    pod by the router itself (nginx: the champion's; the Service router: any ready pod), so
    the router may be given the declared split at once. A router without it routes weight
    only to variants that serve (rollforward.traffic_gate)."""

    def plan(
        self,
        deployment: ModelDeployment,
        served: list[ServedVariant],
        settings: OperatorSettings,
        observed: Observed,
    ) -> RouterPlan:
        """The objects that route traffic to `served`, by their weights."""
        ...

    def readiness(self, deployment: ModelDeployment, observed: Observed) -> tuple[bool, str]:
        """Whether routing works, and if not, why (for the Ready condition)."""
        ...

    def drained(self, deployment: ModelDeployment, observed: Observed) -> bool:
        """Whether nothing routes by an older plan any more, so a variant that left it may
        be deleted (rollforward.traffic_gate)."""
        ...


def router_for(kind: RouterKind) -> Router:
    from rollforward.routers.gateway_api import GatewayApiRouter
    from rollforward.routers.nginx import NginxRouter
    from rollforward.routers.service import ServiceRouter

    routers: dict[RouterKind, Router] = {
        RouterKind.NGINX: NginxRouter(),
        RouterKind.GATEWAY_API: GatewayApiRouter(),
        RouterKind.SERVICE: ServiceRouter(),
    }
    return routers[kind]
