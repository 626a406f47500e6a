"""A bento restarts mid-window: its counters drop to 0, and no decision takes that as evidence.

Given a champion and a candidate exporting the bento metric contract with the same small
error ratio and the champion predicting exactly its training mix, scraped by a real
Prometheus, when both restart (every counter and histogram back to zero, same pod and
series) in the middle of the windows, then across the next window the operator's own drift
and canary queries, through its Prometheus adapter, count no negative and no doubled
requests or predictions, the canary's error-rate analysis is never Failed and the drift
check never Drift. The control: Prometheus did see the resets, and a query without reset
handling (delta()) goes negative over the same window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from devenv.api_cases import example_manifest
from devenv.loop_manifests import TRAINING_SHARES
from devenv.metrics_exporter import Regime, VariantExporter
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.analysis import AnalysisInputs, analyse, analysis_queries, error_rate, verdict
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.api.status import DriftVerdict
from rollforward.drift.check import DriftInputs, drift_queries, run_check
from rollforward.prometheus import PrometheusSource
from rollforward.serving.contract import BENTOML_REQUESTS_TOTAL

NAMESPACE = "resets"
WINDOW_SECONDS = 10
RATE = 40.0
"""Requests (and predictions) per second of each simulated pod."""
CANDIDATE_VERSION = "upsell:v2"
CEILING = RATE * WINDOW_SECONDS * 1.3
"""More than a window can hold, with room for increase()'s extrapolation: a doubled count."""


@dataclass
class Scraped:
    prometheus: LocalPrometheus
    champion: VariantExporter
    candidate: VariantExporter


def deployment() -> ModelDeployment:
    body = example_manifest()
    body["metadata"]["namespace"] = NAMESPACE
    body["spec"]["drift"].update(
        window=f"{WINDOW_SECONDS}s", interval="5s", minSamples=50, consecutiveBreaches=1
    )
    body["spec"]["rollout"]["analysis"] = {
        "minRequests": 10,
        "maxErrorRateIncrease": 0.05,
        "predictionDrift": False,
    }
    return parse_model_deployment(body)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as prometheus:
        exporters = []
        for variant, version in (("champion", "upsell:v1"), ("candidate", CANDIDATE_VERSION)):
            exporter = VariantExporter("upsell", version, variant)
            exporter.regime = Regime(rate=RATE, label_shares=TRAINING_SHARES, error_ratio=0.02)
            exporter.set_baseline(TRAINING_SHARES)
            exporter.start().scrape_as_pod(prometheus, NAMESPACE, f"upsell-{variant}-0")
            exporters.append(exporter)
        try:
            yield Scraped(prometheus, *exporters)
        finally:
            for exporter in exporters:
                exporter.stop()


def gather(prometheus: LocalPrometheus, source: PrometheusSource, at: datetime) -> AnalysisInputs:
    queries = analysis_queries(WINDOW_SECONDS)
    return AnalysisInputs(
        requests=source.query(prometheus.url, queries.requests, at),
        errors=source.query(prometheus.url, queries.errors, at),
        latency_p99=source.query(prometheus.url, queries.latency_p99, at),
        predictions=source.query(prometheus.url, queries.predictions, at),
        baseline=source.query(prometheus.url, queries.baseline, at),
    )


def drift_inputs(
    prometheus: LocalPrometheus, source: PrometheusSource, at: datetime
) -> DriftInputs:
    queries = drift_queries(deployment())
    assert queries.baseline is not None
    return DriftInputs(
        tick=at,
        current=source.query(prometheus.url, queries.current, at),
        baseline=source.query(prometheus.url, queries.baseline, at),
    )


def judge(scraped: Scraped, source: PrometheusSource) -> tuple[AnalysisInputs, str, DriftVerdict]:
    """One look as the operator takes it: the canary's analysis and the drift check."""
    at = datetime.now(UTC)
    inputs = gather(scraped.prometheus, source, at)
    canary = verdict(analyse(deployment(), inputs, "champion", CANDIDATE_VERSION))
    check = run_check(deployment(), drift_inputs(scraped.prometheus, source, at))
    return inputs, canary, check.report.outcome


def assert_counts_sane(inputs: AnalysisInputs) -> None:
    for name, result in (("requests", inputs.requests), ("errors", inputs.errors)):
        assert result.ok, (name, result.error)
        for sample in result.samples:
            assert 0 <= sample.value <= CEILING, (name, sample)
    assert inputs.predictions.ok, inputs.predictions.error
    for sample in inputs.predictions.samples:
        assert 0 <= sample.value <= CEILING, ("predictions", sample)


def resets_seen(prometheus: LocalPrometheus) -> float:
    query = f"sum(resets({BENTOML_REQUESTS_TOTAL}{{namespace='{NAMESPACE}'}}[{WINDOW_SECONDS}s]))"
    return prometheus.query_value(query) or 0.0


def naive_delta(prometheus: LocalPrometheus) -> float:
    """What a query without reset handling makes of the candidate's requests."""
    selector = f"{BENTOML_REQUESTS_TOTAL}{{namespace='{NAMESPACE}',pod='upsell-candidate-0'}}"
    value = prometheus.query_value(f"sum(delta({selector}[{WINDOW_SECONDS}s]))")
    return value if value is not None else 0.0


def test_a_bento_restart_mid_window_is_never_evidence(scraped: Scraped) -> None:
    source = PrometheusSource(timeout_seconds=5, retries=0)
    # Given a full window in which both variants decide cleanly (the control)
    wait_until(
        lambda: judge(scraped, source)[1:] == ("Successful", DriftVerdict.NO_DRIFT),
        timeout=60,
        what="a clean canary analysis and drift check before the restart",
    )
    time.sleep(WINDOW_SECONDS / 2)  # counters well above what a restart leaves

    # When both bentos restart in the middle of the window
    scraped.champion.restart()
    scraped.candidate.restart()
    wait_until(
        lambda: resets_seen(scraped.prometheus) >= 2,
        timeout=30,
        what="Prometheus to scrape the reset counters",
    )

    # Then, for the whole window that spans the reset, no look takes it as evidence
    deltas, verdicts = [], set()
    deadline = time.monotonic() + WINDOW_SECONDS
    while time.monotonic() < deadline:
        inputs, canary, drift = judge(scraped, source)
        assert_counts_sane(inputs)
        error_check = error_rate(deployment(), inputs, "champion")
        assert error_check.outcome != "Failed", error_check
        assert canary != "Failed" and drift is not DriftVerdict.DRIFT, (canary, drift, inputs)
        verdicts.add((canary, drift))
        deltas.append(naive_delta(scraped.prometheus))
        time.sleep(1)
    # The reset was in the window: without increase()'s handling the count goes negative.
    assert min(deltas) < 0, deltas
    assert ("Successful", DriftVerdict.NO_DRIFT) in verdicts, verdicts
