"""Operator-wide configuration, read from ROLLFORWARD_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Defaults that apply to every ModelDeployment unless its spec says otherwise."""

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_", frozen=True)

    prometheus_url: str | None = None
    """Prometheus base URL used when spec.monitoring.prometheusUrl is empty."""
    bento_image: str = "rollforward/bento-runtime:latest"
    """Image that runs `bentoml serve <tag>` for variants that name only a bento."""
    router_image: str = "nginxinc/nginx-unprivileged:1.27-alpine"
    """Image of the nginx router: any image with `nginx` on PATH that runs as user 101."""
    resync_seconds: float = Field(default=30.0, gt=0)
    """Period of the level-based resync timer."""
    field_manager: str = "rollforward"
    """Field manager of every write, so GitOps tools can tell our fields from theirs."""
    prometheus_timeout_seconds: float = Field(default=5.0, gt=0)
    """Timeout of one Prometheus query."""
    prometheus_retries: int = Field(default=2, ge=0)
    """Retries of a failed Prometheus query within one check."""
    health_port: int = 8080
    """Port of kopf's liveness endpoint (/healthz); 0 disables it."""
    metrics_port: int = 0
    """Port of the operator's /metrics; 0 disables it."""
    peering_name: str | None = None
    """kopf peering object for leader election between replicas; None runs standalone."""
    peering_priority: int | None = None
    """This replica's peering priority; random when peering is on and it is not set, because
    kopf pauses every replica that shares the highest priority."""
    workers: int = Field(default=8, ge=1, le=64)
    """Reconciles that may run at once (each in a thread: the Kubernetes client blocks)."""
