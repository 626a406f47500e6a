"""The operator's own Prometheus metrics, on a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.api_writes = Counter(
            "rollforward_operator_api_writes_total",
            "Write calls to the Kubernetes API, by verb and kind.",
            ["verb", "kind"],
            registry=self.registry,
        )
        self.api_reads = Counter(
            "rollforward_operator_api_reads_total",
            "Read calls to the Kubernetes API (get, list), by verb and kind; the watches and"
            " the cache they feed are not counted.",
            ["verb", "kind"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "rollforward_operator_reconciles_total",
            "Reconciles of ModelDeployments, by result.",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "rollforward_operator_reconcile_duration_seconds",
            "Time of one reconcile, gather to status write.",
            registry=self.registry,
        )
        self.drift_score = Gauge(
            "rollforward_operator_drift_score",
            "Last drift score of a ModelDeployment.",
            ["namespace", "name", "statistic"],
            registry=self.registry,
        )
        self.drift_effect = Gauge(
            "rollforward_operator_drift_effect",
            "Effect size of the last drift check: total variation distance of the predicted-label"
            " shares from the baseline (0.05 = 5 points). bound is estimate, lower or upper (its"
            " confidence interval) or minimum (spec.drift.minEffect, which lower must reach).",
            ["namespace", "name", "bound"],
            registry=self.registry,
        )
        self.drift_checks = Counter(
            "rollforward_operator_drift_checks_total",
            "Drift checks, by outcome (Drift, NoDrift, Inconclusive).",
            ["outcome"],
            registry=self.registry,
        )
        self.prometheus_queries = Counter(
            "rollforward_operator_prometheus_queries_total",
            "Queries sent to Prometheus, by result.",
            ["result"],
            registry=self.registry,
        )
        self.prometheus_query_seconds = Histogram(
            "rollforward_operator_prometheus_query_duration_seconds",
            "Latency of one Prometheus query.",
            registry=self.registry,
        )

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)
