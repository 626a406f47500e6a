"""The default router: an operator-owned stock nginx with sticky weighted `split_clients`."""

from __future__ import annotations

from rollforward.api import ModelDeployment
from rollforward.builders import child_metadata, service_host, with_desired_hash
from rollforward.naming import (
    ANNOTATION_CONFIG_CHECKSUM,
    COMPONENT_ROUTER,
    owned_labels,
    router_name,
)
from rollforward.observed import Manifest, Observed, deployment_health, drained
from rollforward.pod_lifecycle import TERMINATION_GRACE_SECONDS, graceful_stop, rolling_update
from rollforward.pod_security import (
    TMP_PATH,
    container_security_context,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from rollforward.routers import RouterPlan
from rollforward.routers.nginx_config import (
    HEALTH_PATH,
    NginxRouterConfig,
    RoutedVariant,
    config_checksum,
    render_nginx_config,
)
from rollforward.settings import OperatorSettings
from rollforward.variants import ServedRole, ServedVariant

LISTEN_PORT = 8080
SERVICE_PORT = 80
CONFIG_KEY = "nginx.conf"
CONFIG_PATH = f"/etc/nginx/{CONFIG_KEY}"
NGINX_USER = 101
"""The user of unprivileged nginx images (nginxinc/nginx-unprivileged, rollforward/router)."""


def nginx_command(prefix: str = TMP_PATH, config: str = CONFIG_PATH) -> list[str]:
    """The router container's command: unprivileged nginx that writes only under `prefix`.

    The rendered config's temporary paths are relative to the prefix (`-p`), so with the
    /tmp emptyDir as prefix the pid file and every temporary file land there, and `-e stderr`
    keeps nginx from opening its compiled-in error log under /var/log before it reads the
    config. Works with Debian's nginx (1.22) and the alpine images alike.
    """
    return [
        "nginx",
        "-p",
        f"{prefix.rstrip('/')}/",
        "-c",
        config,
        "-e",
        "stderr",
        "-g",
        "daemon off; pid nginx.pid;",
    ]


def nginx_config(deployment: ModelDeployment, served: list[ServedVariant]) -> NginxRouterConfig:
    """The renderer's input for this ModelDeployment."""
    champion = next(v.name for v in served if v.role is ServedRole.CHAMPION)
    shadow = next((v.name for v in served if v.role is ServedRole.SHADOW), None)
    return NginxRouterConfig(
        listen_port=LISTEN_PORT,
        sticky_header=deployment.spec.traffic.sticky_header,
        pin_header=deployment.spec.traffic.pin_header,
        champion=champion,
        variants=tuple(
            RoutedVariant(name=v.name, weight=v.weight, upstream=service_host(deployment, v.name))
            for v in served
        ),
        mirror_variant=shadow,
    )


class NginxRouter:
    # The champion's Service is each other routed variant's backup (nginx_config).
    routes_around_unready_variants = True

    def plan(
        self,
        deployment: ModelDeployment,
        served: list[ServedVariant],
        settings: OperatorSettings,
        observed: Observed,
    ) -> RouterPlan:
        text = render_nginx_config(nginx_config(deployment, served))
        name = router_name(deployment.metadata.name)
        labels = owned_labels(deployment.metadata.name, COMPONENT_ROUTER)
        config_map: Manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": child_metadata(deployment, name, labels, {}),
            "data": {CONFIG_KEY: text},
        }
        return RouterPlan(
            objects=[
                with_desired_hash(config_map),
                with_desired_hash(_router_deployment(deployment, settings, name, labels, text)),
                with_desired_hash(_router_service(deployment, name, labels)),
            ]
        )

    def readiness(self, deployment: ModelDeployment, observed: Observed) -> tuple[bool, str]:
        health = deployment_health(
            observed.get("Deployment", router_name(deployment.metadata.name))
        )
        return health.available, f"router: {health.message}"

    def drained(self, deployment: ModelDeployment, observed: Observed) -> bool:
        # Every nginx pod runs the current config and no old one is still shutting down.
        return drained(observed.get("Deployment", router_name(deployment.metadata.name)))


def _router_deployment(
    deployment: ModelDeployment,
    settings: OperatorSettings,
    name: str,
    labels: dict[str, str],
    config_text: str,
) -> Manifest:
    # The checksum on the pod template rolls nginx when (and only when) its config changes:
    # the new pod is Ready (its upstreams resolved) before the old one leaves the Service,
    # and the old one drains (preStop, then SIGQUIT from the image's STOPSIGNAL).
    pod_annotations = {ANNOTATION_CONFIG_CHECKSUM: config_checksum(config_text)}
    # nginx answers /healthz itself, so probing every second is cheap, and a new config (a
    # canary step, a rollback) takes over within a second of nginx starting: with a longer
    # period a probe that came before nginx listened held the old config for a whole period.
    readiness = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "periodSeconds": 1}
    liveness = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(deployment, name, labels, {}),
        "spec": {
            "replicas": 1,
            "strategy": rolling_update(),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
                "spec": {
                    "securityContext": pod_security_context(NGINX_USER),
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "containers": [
                        {
                            "name": "nginx",
                            "image": settings.router_image,
                            "command": nginx_command(),
                            "securityContext": container_security_context(),
                            "ports": [{"name": "http", "containerPort": LISTEN_PORT}],
                            "readinessProbe": readiness,
                            "livenessProbe": liveness,
                            "lifecycle": graceful_stop(),
                            "volumeMounts": [
                                {
                                    "name": "config",
                                    "mountPath": CONFIG_PATH,
                                    "subPath": CONFIG_KEY,
                                    "readOnly": True,
                                },
                                tmp_mount(),
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": name}}, tmp_volume()],
                },
            },
        },
    }


def _router_service(deployment: ModelDeployment, name: str, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(deployment, name, labels, {}),
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}],
        },
    }
