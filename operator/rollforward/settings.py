"""Operator-wide configuration, read from ROLLFORWARD_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollforward.sharding import Shard


class OperatorSettings(BaseSettings):
    """Defaults that apply to every ModelDeployment unless its spec says otherwise."""

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_", frozen=True)

    prometheus_url: str | None = None
    """Prometheus base URL used when spec.monitoring.prometheusUrl is empty."""
    bento_image: str = "rollforward/bento-runtime:0.1.0"
    """Image that runs `bentoml serve <tag>` for variants that name only a bento; pinned to the
    release (images/bento-runtime/Dockerfile), never `latest`."""
    router_image: str = "nginxinc/nginx-unprivileged:1.27-alpine"
    """Image of the nginx router: nginx running unprivileged (user 101, port 8080)."""
    resync_seconds: float = Field(default=30.0, gt=0)
    """Period of the level-based resync timer."""
    field_manager: str = "rollforward"
    """Field manager of every write, so GitOps tools can tell our fields from theirs."""
    prometheus_ca_file: Path | None = None
    """PEM CA bundle for the default Prometheus (a mounted Secret); system CAs when unset."""
    prometheus_bearer_token_file: Path | None = None
    """File holding the bearer token sent to the default Prometheus (a mounted Secret)."""
    prometheus_basic_auth_username: str | None = None
    """Basic-auth user for the default Prometheus; the password is in the file below."""
    prometheus_basic_auth_password_file: Path | None = None
    """File holding the basic-auth password for the default Prometheus (a mounted Secret)."""
    prometheus_insecure_skip_verify: bool = False
    """Do not verify the default Prometheus's certificate (test setups only)."""
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
    bento_store_endpoint: str | None = None
    """S3 endpoint of the operator-wide bento store; no store when empty (pods then serve
    bentos already in their image). A ModelDeployment's spec.bentoStore replaces it."""
    bento_store_bucket: str = "bentos"
    """Bucket of the operator-wide bento store."""
    bento_store_prefix: str = "bentos"
    """Key prefix of the operator-wide bento store."""
    bento_store_region: str = "us-east-1"
    """Region the operator-wide store's requests are signed for."""
    bento_store_secret: str | None = None
    """Name of the Secret (in each ModelDeployment's namespace) with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY for the operator-wide store; anonymous when empty."""
    bento_store_check_seconds: float = Field(default=60.0, gt=0)
    """How long one check that a bento is in the store is trusted before it is repeated."""
    debounce_seconds: float = Field(default=0.5, ge=0)
    """How long a burst of events of one ModelDeployment's children is gathered into one
    reconcile (from its first event; a steady stream cannot postpone it), and the events after
    a reconcile; a change to a ModelDeployment quiet for that long is reconciled at once
    (rollforward.workqueue)."""
    relist_seconds: float = Field(default=300.0, gt=0)
    """Period of the full relist that rebuilds the watch-fed cache (it is also rebuilt when
    a watch restarts): a bound on how long a missed watch event can go unnoticed."""
    shard: str = "0/1"
    """`i/n`: act only on ModelDeployments whose namespace/name hash falls in shard i of n
    (see rollforward.sharding); 0/1 owns everything."""

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, value: str) -> str:
        return str(Shard.parse(value))

    @property
    def owned_shard(self) -> Shard:
        return Shard.parse(self.shard)
