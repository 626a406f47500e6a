"""Prometheus faults beyond "down", against a real Prometheus scraping simulated bento pods.

Given a champion and a candidate exporting the bento metric contract, scraped by a real
Prometheus, when a canary step's analysis is gathered through the real Prometheus adapter
and judged by the pure analysis, then: with both variants' series it decides (the control);
with Prometheus frozen (SIGSTOP) beyond the query timeout it is Inconclusive; and with the
candidate's series missing (a partial result) it is Inconclusive, never Failed: missing
data is never evidence, so it can never cause a rollback.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devenv.api_cases import example_manifest
from devenv.metrics_exporter import VariantExporter
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.analysis import AnalysisInputs, analyse, analysis_queries, verdict
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.prometheus import PrometheusSource

NAMESPACE = "faults"
WINDOW_SECONDS = 10
CANDIDATE_VERSION = "upsell:v2"


def deployment() -> ModelDeployment:
    body = example_manifest()
    body["metadata"]["namespace"] = NAMESPACE
    body["spec"]["rollout"]["analysis"] = {
        "minRequests": 10,
        "maxErrorRateIncrease": 0.05,
        "predictionDrift": False,
    }
    return parse_model_deployment(body)


def scraped_pod(exporter: VariantExporter) -> tuple[str, str]:
    """The Prometheus job and address of `exporter`, scraped as bento pod upsell-<variant>-0."""
    return f"bento-{NAMESPACE}-upsell-{exporter.variant}-0", f"127.0.0.1:{exporter.port}"


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalPrometheus, VariantExporter]]:
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as prometheus:
        exporters = []
        for variant, version in (("champion", "upsell:v1"), ("candidate", CANDIDATE_VERSION)):
            exporter = VariantExporter("upsell", version, variant).start()
            exporter.scrape_as_pod(prometheus, NAMESPACE, f"upsell-{variant}-0")
            exporters.append(exporter)
        try:
            yield prometheus, exporters[1]
        finally:
            for exporter in exporters:
                exporter.stop()


def gather(prometheus: LocalPrometheus, source: PrometheusSource) -> AnalysisInputs:
    queries, now = analysis_queries(WINDOW_SECONDS), datetime.now(UTC)
    return AnalysisInputs(
        requests=source.query(prometheus.url, queries.requests, now),
        errors=source.query(prometheus.url, queries.errors, now),
        latency_p99=source.query(prometheus.url, queries.latency_p99, now),
        predictions=source.query(prometheus.url, queries.predictions, now),
        baseline=source.query(prometheus.url, queries.baseline, now),
    )


def outcome(prometheus: LocalPrometheus, source: PrometheusSource) -> str:
    results = analyse(deployment(), gather(prometheus, source), "champion", CANDIDATE_VERSION)
    return verdict(results)


def variants_seen(prometheus: LocalPrometheus) -> set[str]:
    query = analysis_queries(WINDOW_SECONDS).requests
    return {s["metric"].get("variant", "") for s in prometheus.query(query)}


def test_both_variants_present_decides(scraped: tuple[LocalPrometheus, VariantExporter]) -> None:
    prometheus, _ = scraped
    source = PrometheusSource(timeout_seconds=5, retries=0)
    wait_until(
        lambda: outcome(prometheus, source) == "Successful",
        timeout=60,
        what="the control analysis to decide with both variants' series",
    )


def test_prometheus_slower_than_the_timeout_is_inconclusive(
    scraped: tuple[LocalPrometheus, VariantExporter],
) -> None:
    prometheus, _ = scraped
    process = prometheus.process
    assert process is not None and process.pid is not None
    # Frozen, Prometheus still accepts connections (the kernel does) but never answers.
    os.kill(process.pid, signal.SIGSTOP)
    try:
        source = PrometheusSource(timeout_seconds=1, retries=0)
        inputs = gather(prometheus, source)
        results = analyse(deployment(), inputs, "champion", CANDIDATE_VERSION)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    assert inputs.requests.error is not None and "no answer within 1s" in inputs.requests.error
    assert verdict(results) == "Inconclusive"
    assert {r.outcome for r in results} == {"Inconclusive"}


def test_one_variants_series_missing_is_inconclusive(
    scraped: tuple[LocalPrometheus, VariantExporter],
) -> None:
    prometheus, candidate = scraped
    prometheus.remove_target(*scraped_pod(candidate))
    wait_until(
        lambda: variants_seen(prometheus) == {"champion"},
        timeout=60,
        what="the candidate's series to leave the window (a partial result)",
    )
    results = analyse(
        deployment(),
        gather(prometheus, PrometheusSource(timeout_seconds=5, retries=0)),
        "champion",
        CANDIDATE_VERSION,
    )
    assert verdict(results) == "Inconclusive", results
    assert "Failed" not in {r.outcome for r in results}
