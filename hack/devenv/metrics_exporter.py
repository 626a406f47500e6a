"""A scrape target whose bento metrics the test steers, for operator tests on kwok.

kwok runs no container, so the operator integration tests need the metric series a bento
pod would export. This serves exactly the contract's names and labels from a real
prometheus_client registry, advancing the counters every 100 ms at a rate and in a mix
the test sets; a real Prometheus scrapes it. (The end-to-end tests run real bentos.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from devenv.processes import free_port
from rollforward.serving.contract import (
    BASELINE_RATIO,
    BENTOML_REQUEST_DURATION,
    BENTOML_REQUESTS_TOTAL,
    PREDICTIONS_TOTAL,
)

TICK_SECONDS = 0.1


@dataclass
class Regime:
    """What the simulated pod does per second."""

    rate: float = 20.0
    label_shares: dict[str, float] = field(default_factory=lambda: {"upgrade": 0.3, "stay": 0.7})
    error_ratio: float = 0.0
    latency_seconds: float = 0.02


class VariantExporter:
    """One simulated bento pod of one variant."""

    def __init__(self, model: str, version: str, variant: str) -> None:
        self.model, self.version, self.variant = model, version, variant
        self.port = free_port()
        self.regime = Regime()
        self._registry = CollectorRegistry()
        self._predictions = Counter(
            PREDICTIONS_TOTAL.removesuffix("_total"),
            "",
            ["model", "version", "variant", "label", "segment"],
            registry=self._registry,
        )
        self._baseline = Gauge(
            BASELINE_RATIO, "", ["model", "version", "label"], registry=self._registry
        )
        self._requests = Counter(
            BENTOML_REQUESTS_TOTAL.removesuffix("_total"),
            "",
            ["endpoint", "http_response_code"],
            registry=self._registry,
        )
        self._latency = Histogram(
            BENTOML_REQUEST_DURATION,
            "",
            ["endpoint", "http_response_code"],
            registry=self._registry,
        )
        for code in ("200", "500"):  # BentoML creates these at start too
            self._requests.labels("/predict", code)
            self._latency.labels("/predict", code)
        self._owed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set_baseline(self, ratios: dict[str, float], version: str | None = None) -> None:
        """Publish the baseline and zero-valued prediction series, as rollforward.serving
        does at start: a series born with its first increment would hide that increment
        from PromQL's increase() and skew a young window's label mix."""
        version = version or self.version
        for label, ratio in ratios.items():
            self._baseline.labels(self.model, version, label).set(ratio)
            self._predictions.labels(self.model, version, self.variant, label, "")

    def serve_version(self, version: str, baseline: dict[str, float]) -> None:
        """From now on, export as `version` (as a new pod of that version would)."""
        self.set_baseline(baseline, version)
        self.version = version

    def start(self) -> VariantExporter:
        start_http_server(self.port, addr="127.0.0.1", registry=self._registry)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _emit(self, key: str, amount: float) -> int:
        """Whole events owed so far for `key` (fractions carry over between ticks)."""
        owed = self._owed.get(key, 0.0) + amount
        whole = int(owed)
        self._owed[key] = owed - whole
        return whole

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            regime = self.regime
            per_tick = regime.rate * TICK_SECONDS
            for label, share in regime.label_shares.items():
                count = self._emit(f"label:{label}", per_tick * share)
                if count:
                    self._predictions.labels(self.model, self.version, self.variant, label, "").inc(
                        count
                    )
            for code, share in (("500", regime.error_ratio), ("200", 1 - regime.error_ratio)):
                count = self._emit(f"code:{code}", per_tick * share)
                for _ in range(count):
                    self._requests.labels("/predict", code).inc()
                    self._latency.labels("/predict", code).observe(regime.latency_seconds)
