"""Start the operator: settings from the environment, handlers on a registry, kopf.run."""

from __future__ import annotations

import logging
import secrets

import kopf

from rollforward.bentostore.gateway import StoreGateway
from rollforward.handlers import OperatorContext, register_handlers
from rollforward.kube import KubeAdapter, load_api_client
from rollforward.metrics import OperatorMetrics
from rollforward.prometheus import PrometheusSource
from rollforward.settings import OperatorSettings


def run_operator(namespaces: list[str], all_namespaces: bool, shard: str | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = OperatorSettings(shard=shard) if shard else OperatorSettings()
    metrics = OperatorMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    kube = KubeAdapter(load_api_client(), settings.field_manager, metrics)
    context = OperatorContext(
        settings=settings,
        kube=kube,
        metrics=metrics,
        prometheus=PrometheusSource(
            timeout_seconds=settings.prometheus_timeout_seconds,
            retries=settings.prometheus_retries,
            metrics=metrics,
        ),
        stores=StoreGateway(kube.read_secret, settings.bento_store_check_seconds),
        namespaces=None if all_namespaces or not namespaces else namespaces,
    )
    registry = kopf.OperatorRegistry()
    register_handlers(registry, context)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        registry=registry,
        clusterwide=all_namespaces or not namespaces,
        namespaces=namespaces,
        standalone=settings.peering_name is None,
        peering_name=peering_name(settings),
        priority=_peering_priority(settings),
        liveness_endpoint=liveness,
    )


def peering_name(settings: OperatorSettings) -> str | None:
    """Standby replicas take over within their shard only: one peering object per shard."""
    shard = settings.owned_shard
    if settings.peering_name is None or shard.count == 1:
        return settings.peering_name
    return f"{settings.peering_name}-shard-{shard.index}-of-{shard.count}"


def _peering_priority(settings: OperatorSettings) -> int | None:
    if settings.peering_name is None:
        return None
    if settings.peering_priority is not None:
        return settings.peering_priority
    return secrets.randbelow(1_000_000) + 1
