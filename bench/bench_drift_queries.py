"""Prometheus queries per drift-check interval for 1, 10, 100 and 300 ModelDeployments,
against a one-query-per-resource baseline measured in the same run.

A real Prometheus (Debian's) scrapes a few simulated bento pods, so the queries return
series. For each fleet size, the operator's own code runs one check interval: the real
`PrometheusSource` (its per-tick cache) and `gather_drift`, over in-memory ModelDeployments
parsed from the README example with distinct names, namespaces and models but the same drift
window and interval, called from a thread pool as wide as the operator's workers (the
operator runs reconciles in threads). The baseline sends, for each resource, the same two
queries (current window, training baseline) narrowed by a `{namespace, model}` matcher, as a
design without batching would.

Queries are counted twice, independently: by Prometheus itself
(`prometheus_http_requests_total{handler="/api/v1/query"}` on its /metrics, read before and
after) and by the operator's `rollforward_operator_prometheus_queries_total`.

    PYTHONPATH=operator:tests python bench/bench_drift_queries.py
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devenv.api_cases import example_manifest
from devenv.cluster import REPO_ROOT
from devenv.metrics_exporter import VariantExporter
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.drift.check import check_tick, drift_queries
from rollforward.metrics import OperatorMetrics
from rollforward.prometheus import PrometheusSource, Sample, escape_label_value
from rollforward.reconcile import gather_drift
from rollforward.serving.contract import BASELINE_RATIO, PREDICTIONS_TOTAL
from rollforward.settings import OperatorSettings

FLEET_SIZES = (1, 10, 100, 300)
NAMESPACES = 10
EXPORTED_RESOURCES = 3
QUERY_HANDLER = "/api/v1/query"
INTERVAL_SECONDS = 300
"""The example's drift interval (5m)."""


def fleet(size: int, prometheus_url: str) -> list[ModelDeployment]:
    """`size` copies of the example: own name, namespace and model; same drift settings."""
    deployments = []
    for index in range(size):
        body = copy.deepcopy(example_manifest())
        body["metadata"] = {"name": f"model-{index:03d}", "namespace": f"team-{index % NAMESPACES}"}
        body["spec"]["model"] = f"model-{index:03d}"
        body["spec"]["monitoring"]["prometheusUrl"] = prometheus_url
        deployments.append(parse_model_deployment(body))
    return deployments


def per_resource_queries(deployment: ModelDeployment) -> list[str]:
    """The baseline design: this resource's own current and baseline queries."""
    matcher = (
        f'namespace="{escape_label_value(deployment.metadata.namespace)}",'
        f'model="{escape_label_value(deployment.spec.model)}"'
    )
    shared = drift_queries(deployment)
    narrowed = [shared.current, *([shared.baseline] if shared.baseline else [])]
    for metric in (PREDICTIONS_TOTAL, BASELINE_RATIO):
        narrowed = [query.replace(metric, f"{metric}{{{matcher}}}") for query in narrowed]
    return narrowed


def prometheus_query_requests(url: str) -> float:
    """Instant-query HTTP requests Prometheus has served, from its own /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "prometheus_http_requests_total"
                and sample.labels.get("handler") == QUERY_HANDLER
            ):
                total += sample.value
    return total


def operator_queries(metrics: OperatorMetrics) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "rollforward_operator_prometheus_queries_total":
                total += sample.value
    return total


Check = Callable[[PrometheusSource, ModelDeployment], tuple[bool, bool]]
"""One resource's check: (every query answered, its own series found)."""


def owns(deployment: ModelDeployment, sample: Sample) -> bool:
    return (
        sample.labels.get("namespace") == deployment.metadata.namespace
        and sample.labels.get("model") == deployment.spec.model
    )


@dataclass(frozen=True)
class Interval:
    """One check interval of one design for one fleet size."""

    design: str
    size: int
    served_by_prometheus: float
    counted_by_operator: float
    seconds: float
    failed: int
    """Resources whose queries failed."""
    with_data: int
    """Resources that found their own series in the answers (a check of the queries)."""


def run_interval(
    design: str,
    deployments: Sequence[ModelDeployment],
    check: Check,
    prometheus_url: str,
    workers: int,
) -> Interval:
    """Run `check` for every resource on a fresh source; count what reached Prometheus."""
    metrics = OperatorMetrics()
    source = PrometheusSource(timeout_seconds=10, retries=0, metrics=metrics)
    before = prometheus_query_requests(prometheus_url)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda md: check(source, md), deployments))
    seconds = time.perf_counter() - started
    served = prometheus_query_requests(prometheus_url) - before
    return Interval(
        design,
        len(deployments),
        served,
        operator_queries(metrics),
        seconds,
        failed=sum(not ok for ok, _ in outcomes),
        with_data=sum(found for _, found in outcomes),
    )


def batched_check(settings: OperatorSettings, now: datetime) -> Check:
    def check(source: PrometheusSource, deployment: ModelDeployment) -> tuple[bool, bool]:
        inputs = gather_drift(deployment, source, settings, now)
        assert inputs is not None, "a fresh resource is always due for a check"
        ok = inputs.current.ok and (inputs.baseline is None or inputs.baseline.ok)
        return ok, any(owns(deployment, s) for s in inputs.current.samples)

    return check


def naive_check(now: datetime) -> Check:
    def check(source: PrometheusSource, deployment: ModelDeployment) -> tuple[bool, bool]:
        url = deployment.spec.monitoring.prometheus_url
        assert url is not None
        tick = check_tick(deployment, now)
        results = [source.query(url, q, tick) for q in per_resource_queries(deployment)]
        found = any(owns(deployment, s) for s in results[0].samples)
        return all(r.ok for r in results), found

    return check


def start_exporters(prometheus: LocalPrometheus) -> list[VariantExporter]:
    """A few simulated champion pods, so that the queries return real series."""
    exporters = []
    for deployment in fleet(EXPORTED_RESOURCES, prometheus.url):
        exporter = VariantExporter(deployment.spec.model, "v1", "champion").start()
        exporter.set_baseline({"upgrade": 0.3, "stay": 0.7})
        pod = f"{deployment.metadata.name}-champion-0"
        exporter.scrape_as_pod(prometheus, deployment.metadata.namespace, pod)
        exporters.append(exporter)
    return exporters


def summarize(runs: list[Interval]) -> Interval:
    """The rounds of one design and size: median wall time, the largest counts."""
    return Interval(
        runs[0].design,
        runs[0].size,
        max(r.served_by_prometheus for r in runs),
        max(r.counted_by_operator for r in runs),
        statistics.median(r.seconds for r in runs),
        failed=max(r.failed for r in runs),
        with_data=min(r.with_data for r in runs),
    )


def report(intervals: list[Interval], workers: int, series: int, rounds: int) -> str:
    grouped: dict[tuple[str, int], list[Interval]] = {}
    for interval in intervals:
        grouped.setdefault((interval.design, interval.size), []).append(interval)
    by_key = {key: summarize(runs) for key, runs in grouped.items()}
    spread = {key: sorted({r.served_by_prometheus for r in runs}) for key, runs in grouped.items()}
    lines = [
        "# Prometheus queries per drift-check interval",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs against a real "
        f"Prometheus holding {series} series of simulated bento pods. One interval = one "
        f"`gather_drift` per resource at the same aligned tick, from {workers} threads "
        "(the operator's default ROLLFORWARD_WORKERS). Every resource has the example's drift "
        f"settings (window 10m, interval 5m, training baseline). {rounds} rounds per size and "
        "design, alternating; wall times are medians, query counts the largest of any round.",
        "",
        "| resources | batched: queries (Prometheus / operator) | per-resource baseline: "
        "queries (Prometheus / operator) | batched wall ms | baseline wall ms "
        "| baseline / batched wall | resources with data (batched / baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in sorted({i.size for i in intervals}):
        batched, naive = by_key[("batched", size)], by_key[("per-resource", size)]
        ratio = naive.seconds / batched.seconds if batched.seconds else float("nan")
        lines.append(
            f"| {size} | {batched.served_by_prometheus:.0f} / {batched.counted_by_operator:.0f} "
            f"| {naive.served_by_prometheus:.0f} / {naive.counted_by_operator:.0f} "
            f"| {batched.seconds * 1000:.1f} | {naive.seconds * 1000:.1f} | {ratio:.1f}x "
            f"| {batched.with_data} / {naive.with_data} |"
        )
    batched_counts = {i.served_by_prometheus for i in intervals if i.design == "batched"}
    failed = sum(i.failed for i in intervals)
    varying = {key: counts for key, counts in spread.items() if len(counts) > 1}
    lines += [
        "",
        f"Batched queries per interval across fleet sizes: {sorted(batched_counts)} "
        f"({'constant' if len(batched_counts) == 1 else '**not constant**'}); counts that "
        f"varied between rounds: {varying or 'none'}. "
        f"Checks whose queries failed: {failed}. The first {EXPORTED_RESOURCES} resources have "
        "simulated pods, so both designs must find data for min(resources, "
        f"{EXPORTED_RESOURCES}) of them.",
        "",
    ]
    return "\n".join(lines)


def models_with_increase(prometheus: LocalPrometheus) -> int:
    return len(prometheus.query(f"sum by (model) (increase({PREDICTIONS_TOTAL}[10m]))"))


def count_series(prometheus: LocalPrometheus) -> int:
    return len(prometheus.query('{__name__=~"rollforward_.*"}'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench-results/drift-queries.md")
    parser.add_argument("--workers", type=int, default=OperatorSettings().workers)
    parser.add_argument("--rounds", type=int, default=5, help="intervals per size and design")
    args = parser.parse_args()
    settings = OperatorSettings()

    with (
        tempfile.TemporaryDirectory(prefix="bench-drift-queries-") as scratch,
        LocalPrometheus(Path(scratch) / "prometheus") as prometheus,
    ):
        exporters = start_exporters(prometheus)
        wait_until(
            lambda: models_with_increase(prometheus) >= EXPORTED_RESOURCES,
            60,
            what="an increase over the window for every simulated pod",
        )
        series = count_series(prometheus)
        intervals = []
        # The next interval boundary: the aligned tick falls after the first samples.
        now = datetime.fromtimestamp((time.time() // INTERVAL_SECONDS + 1) * INTERVAL_SECONDS, UTC)
        for size in FLEET_SIZES:
            deployments = fleet(size, prometheus.url)
            # Each run has a fresh source (empty cache), so neither reuses the other's; the
            # designs alternate, so a change in machine load hits both alike.
            for _ in range(args.rounds):
                for design, check in (
                    ("batched", batched_check(settings, now)),
                    ("per-resource", naive_check(now)),
                ):
                    intervals.append(
                        run_interval(design, deployments, check, prometheus.url, args.workers)
                    )
        for exporter in exporters:
            exporter.stop()
    text = report(intervals, args.workers, series, args.rounds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
