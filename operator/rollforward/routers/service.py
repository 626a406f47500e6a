"""No router: one Service over every serving variant's pods.

kube-proxy spreads connections evenly over ready pods, so the split is the replica ratio
(see variants._replicas_follow_weights). It is approximate and not sticky, and pinning is
not possible; it suits teams that want no extra hop.
"""

from __future__ import annotations

from rollforward.api import ModelDeployment
from rollforward.builders import child_metadata, with_desired_hash
from rollforward.naming import COMPONENT_BENTO, COMPONENT_ROUTER, owned_labels, router_name
from rollforward.observed import Manifest, Observed
from rollforward.routers import RouterPlan
from rollforward.serving.contract import DEFAULT_PORT
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedVariant


class ServiceRouter:
    # kube-proxy sends each connection to a ready pod of any variant; the weights set the
    # replicas, and gating them would scale a variant that does not serve yet to zero.
    routes_around_unready_variants = True

    def plan(
        self,
        deployment: ModelDeployment,
        served: list[ServedVariant],
        settings: OperatorSettings,
        observed: Observed,
    ) -> RouterPlan:
        return RouterPlan(objects=[with_desired_hash(shared_service(deployment))])

    def readiness(self, deployment: ModelDeployment, observed: Observed) -> tuple[bool, str]:
        exists = observed.get("Service", router_name(deployment.metadata.name)) is not None
        return exists, "router: Service exists" if exists else "router: Service not created yet"

    def drained(self, deployment: ModelDeployment, observed: Observed) -> bool:
        # kube-proxy drops a deleted pod from the Service; the pod's preStop covers the lag.
        return True


def shared_service(deployment: ModelDeployment) -> Manifest:
    # Shadows are excluded by role: they must receive no user traffic.
    selector = owned_labels(deployment.metadata.name, COMPONENT_BENTO)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(
            deployment,
            router_name(deployment.metadata.name),
            owned_labels(deployment.metadata.name, COMPONENT_ROUTER),
            {},
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": DEFAULT_PORT, "targetPort": "http"}],
        },
    }
