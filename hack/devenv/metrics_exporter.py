"""A scrape target whose bento metrics the test steers, for operator tests on kwok.

kwok runs no container, so the operator integration tests need the metric series a bento
pod would export. This serves exactly the names and labels a real bento exports (the
contract's, through rollforward.serving, and BentoML's request metrics) from a real
prometheus_client registry, advancing the counters every 100 ms at a rate and in a mix
the test sets; a real Prometheus scrapes it as a pod (`scrape_as_pod`), relabelled as the
chart's PodMonitor does. (The end-to-end tests run real bentos.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from devenv.processes import free_port
from devenv.prometheus import LocalPrometheus
from devenv.scrape_config import kubernetes_sd_labels
from rollforward.serving.contract import (
    BASELINE_RATIO,
    BASELINE_RATIO_LABELS,
    BENTOML_REQUEST_DURATION,
    BENTOML_REQUESTS_TOTAL,
    PREDICTIONS_LABELS,
    PREDICTIONS_TOTAL,
    VARIANT_INFO,
    VARIANT_INFO_LABELS,
)

TICK_SECONDS = 0.1
# BentoML's request metrics and their labels (bentoml/_internal/server/http/instruments.py).
BENTOML_LABELS = ("endpoint", "service_name", "service_version", "http_response_code")
SERVICE_NAME = "upsell"
SERVICE_VERSION = "simulated"


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
        self._registry = registry = CollectorRegistry()
        self._predictions = Counter(
            PREDICTIONS_TOTAL.removesuffix("_total"), "", PREDICTIONS_LABELS, registry=registry
        )
        self._baseline = Gauge(BASELINE_RATIO, "", BASELINE_RATIO_LABELS, registry=registry)
        self._info = Gauge(VARIANT_INFO, "", VARIANT_INFO_LABELS, registry=registry)
        self._info.labels(model, version, variant).set(1)
        self._requests = Counter(
            BENTOML_REQUESTS_TOTAL.removesuffix("_total"), "", BENTOML_LABELS, registry=registry
        )
        self._latency = Histogram(BENTOML_REQUEST_DURATION, "", BENTOML_LABELS, registry=registry)
        self._create_request_series()
        self._owed: dict[str, float] = {}
        self._prediction_series: set[tuple[str, str]] = set()
        # The ticking thread and `restart` both touch the metrics and what is owed.
        self._lock = threading.Lock()
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
            self._prediction_series.add((version, label))

    def serve_version(self, version: str, baseline: dict[str, float]) -> None:
        """From now on, export as `version` (as a new pod of that version would)."""
        self.set_baseline(baseline, version)
        self._info.remove(self.model, self.version, self.variant)
        self._info.labels(self.model, version, self.variant).set(1)
        self.version = version

    def restart(self) -> None:
        """Every counter and histogram back to zero, as a restarted bento container's are
        (same pod, so the same series): Prometheus sees a counter reset."""
        with self._lock:
            for metric in (self._predictions, self._requests, self._latency):
                metric.clear()
            self._owed.clear()
            self._create_request_series()
            for version, label in self._prediction_series:
                if version == self.version:  # a restarted pod exports only what it serves
                    self._predictions.labels(self.model, version, self.variant, label, "")

    def scrape_as_pod(
        self, prometheus: LocalPrometheus, namespace: str, pod: str, wait: bool = True
    ) -> str:
        """Have `prometheus` scrape this exporter as bento pod `namespace/pod`; its job name.
        With `wait`, return once it is up; else the caller waits (`wait_scraped`), so many
        targets come up together rather than a scrape round each."""
        labels = {"rollforward.io/variant": self.variant, "app.kubernetes.io/component": "bento"}
        job = f"bento-{namespace}-{pod}"
        prometheus.add_pod_target(job, self.address, kubernetes_sd_labels(namespace, pod, labels))
        if wait:
            self.wait_scraped(prometheus, job)
        return job

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_scraped(self, prometheus: LocalPrometheus, job: str) -> None:
        prometheus.wait_for_target_up(job, self.address, timeout=60)

    def _create_request_series(self) -> None:
        for code in ("200", "500"):  # BentoML creates these at start too
            self._requests.labels(*self._bentoml_labels(code))
            self._latency.labels(*self._bentoml_labels(code))

    def _bentoml_labels(self, code: str) -> tuple[str, str, str, str]:
        return ("/predict", SERVICE_NAME, SERVICE_VERSION, code)

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
            with self._lock:
                self._tick()

    def _tick(self) -> None:
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
                self._requests.labels(*self._bentoml_labels(code)).inc()
                self._latency.labels(*self._bentoml_labels(code)).observe(regime.latency_seconds)
