"""Gateway API router: an HTTPRoute with weighted backendRefs.

Gateway implementations split request by request, so this router is not sticky; use nginx
for A/B tests on users. The pin header still forces a variant through a header match.
"""

from __future__ import annotations

from rollforward.api import ModelDeployment, Reason
from rollforward.builders import child_metadata, with_desired_hash
from rollforward.naming import COMPONENT_ROUTER, owned_labels, router_name, variant_name
from rollforward.observed import Manifest, Observed
from rollforward.routers import RouterPlan
from rollforward.serving.contract import DEFAULT_PORT
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedRole, ServedVariant

HTTPROUTE_API_VERSION = "gateway.networking.k8s.io/v1"


class GatewayApiRouter:
    # A backendRef's weight holds whatever its endpoints: the weight goes only to variants
    # that serve (rollforward.traffic_gate).
    routes_around_unready_variants = False

    def plan(
        self,
        deployment: ModelDeployment,
        served: list[ServedVariant],
        settings: OperatorSettings,
        observed: Observed,
    ) -> RouterPlan:
        if not observed.gateway_api_installed:
            return RouterPlan(
                blocked=(
                    Reason.GATEWAY_API_MISSING,
                    "router gateway-api needs the Gateway API CRDs (HTTPRoute "
                    f"{HTTPROUTE_API_VERSION}); install them or use router nginx",
                )
            )
        return RouterPlan(objects=[with_desired_hash(http_route(deployment, served))])

    def readiness(self, deployment: ModelDeployment, observed: Observed) -> tuple[bool, str]:
        route = observed.get("HTTPRoute", router_name(deployment.metadata.name))
        if route is None:
            return False, "router: HTTPRoute does not exist yet"
        for parent in route.get("status", {}).get("parents", []) or []:
            for condition in parent.get("conditions", []) or []:
                if condition.get("type") == "Accepted" and condition.get("status") == "False":
                    return (
                        False,
                        f"router: Gateway refused the HTTPRoute: {condition.get('message')}",
                    )
        return True, "router: HTTPRoute exists"

    def drained(self, deployment: ModelDeployment, observed: Observed) -> bool:
        # The Gateway's data plane reports no generation it has programmed per backend, so
        # the variant's pods (preStop, graceful shutdown) cover the Gateway's own lag.
        return True


def _backend(deployment: ModelDeployment, variant: str, weight: int | None = None) -> Manifest:
    ref: Manifest = {"name": variant_name(deployment.metadata.name, variant), "port": DEFAULT_PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


def http_route(deployment: ModelDeployment, served: list[ServedVariant]) -> Manifest:
    gateway = deployment.spec.traffic.gateway
    assert gateway is not None, "the API requires traffic.gateway for router gateway-api"
    parent: Manifest = {"name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    routed = [v for v in served if v.role is not ServedRole.SHADOW]
    pin_rules = [
        {
            "matches": [
                {"headers": [{"name": deployment.spec.traffic.pin_header, "value": v.name}]}
            ],
            "backendRefs": [_backend(deployment, v.name)],
        }
        for v in routed
    ]
    split_rule = {"backendRefs": [_backend(deployment, v.name, v.weight) for v in routed]}
    name = router_name(deployment.metadata.name)
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": child_metadata(
            deployment, name, owned_labels(deployment.metadata.name, COMPONENT_ROUTER), {}
        ),
        "spec": {"parentRefs": [parent], "rules": [*pin_rules, split_rule]},
    }
