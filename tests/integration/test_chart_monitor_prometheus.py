"""Drift and canary analysis against a real Prometheus that scrapes real bentos through the
chart's own PodMonitor.

The PodMonitor is rendered by the real helm and turned into a Prometheus scrape job (its
selector and port become `keep` rules, its relabelings and honorLabels carry over, as
Prometheus Operator does). Each `bentoml serve` is a file_sd target carrying the labels
Kubernetes service discovery gives a pod (`__meta_kubernetes_namespace`, `..._pod_name`,
`..._pod_label_*`), so the series hold exactly what a cluster's Prometheus would store. The
operator's own gather and decide functions then run their queries on it: every measurement must
be Successful or Failed, never Inconclusive.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.api_cases import example_manifest
from devenv.bento import BentoServer, start_bento_server
from devenv.cluster import REPO_ROOT, ClusterBinaries
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from devenv.scrape_config import (
    POD_RELABELINGS,
    kubernetes_sd_labels,
    pod_monitor_scrape_config,
    relabel_config,
)
from devenv.soom_traffic import SteadyTraffic
from fixtures.fixtures_bento import BuiltBento
from rollforward.analysis import analyse, analysis_queries, verdict
from rollforward.api import DriftVerdict, ModelDeployment, parse_model_deployment
from rollforward.builders import variant_labels
from rollforward.drift.check import run_check
from rollforward.fetch import plan_fetch
from rollforward.lifecycle.canary import rollout_hash
from rollforward.naming import CANDIDATE_VARIANT
from rollforward.prometheus import PrometheusSource
from rollforward.prometheus_access import resolve_target
from rollforward.reconcile import fetch_analysis, gather_drift
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

CHART = REPO_ROOT / "charts" / "rollforward"
NAMESPACE = "ml"
MODEL = "upsell"
WINDOW_SECONDS = 60
WINDOW = f"{WINDOW_SECONDS}s"
# The traffic's rate is bounded by two shared cores; what counts is that the window holds this.
MIN_REQUESTS = 50


def rendered_pod_monitor() -> dict[str, Any]:
    argv = [str(ClusterBinaries.from_environment().path("helm")), "template", "rf", str(CHART),
            "-n", "rollforward-system", "--set", "monitoring.podMonitor.enabled=true",
            "--show-only", "templates/podmonitor.yaml"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    monitor: dict[str, Any] = yaml.safe_load(result.stdout)
    assert monitor["kind"] == "PodMonitor"
    return monitor


def canary(bento: str, prometheus: str) -> ModelDeployment:
    """The README's ModelDeployment in its first canary step, `bento` as every version."""
    manifest = example_manifest()
    manifest["metadata"].update(namespace=NAMESPACE, uid="u1")
    spec = manifest["spec"]
    spec["model"] = MODEL
    spec["variants"] = [{"name": "champion", "role": "champion", "bento": bento, "weight": 100}]
    spec["monitoring"] = {"prometheusUrl": prometheus}
    spec["drift"] = {"window": WINDOW, "interval": "5s", "minSamples": MIN_REQUESTS}
    spec["rollout"]["steps"] = [{"weight": 50, "pause": WINDOW}]
    spec["rollout"]["analysis"]["minRequests"] = MIN_REQUESTS
    manifest["status"] = {
        "rollout": {
            "candidateVersion": bento,
            "step": 0,
            "triggerId": "t1",
            "stepStartedAt": "2026-11-30T00:00:00Z",
            "specHash": "h",
            "candidateReady": True,
        }
    }
    md = parse_model_deployment(manifest)
    # The step is the one of this spec, so the operator's fetch plan measures it.
    rollout = md.status.rollout
    assert rollout is not None
    rollout = rollout.model_copy(update={"spec_hash": rollout_hash(md)})
    return md.model_copy(update={"status": md.status.model_copy(update={"rollout": rollout})})


@pytest.fixture(scope="module")
def pod_monitor() -> dict[str, Any]:
    return rendered_pod_monitor()


@pytest.fixture(scope="module")
def prometheus(
    pod_monitor: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    def job(files: Any) -> dict[str, Any]:
        return pod_monitor_scrape_config(pod_monitor, "rollforward-bentos", files)

    with LocalPrometheus(tmp_path_factory.mktemp("prometheus"), pod_job=job) as running:
        yield running


def serve_as_pod(
    bento: BuiltBento, prometheus: LocalPrometheus, md: ModelDeployment, variant: str, run: Path
) -> BentoServer:
    """`bentoml serve` with the env and pod labels the operator gives `variant`'s pods."""
    served = {v.name: v for v in served_variants(md.spec, md.status)}[variant]
    env = {
        "ROLLFORWARD_MODEL": MODEL,
        "ROLLFORWARD_VERSION": served.version,
        "ROLLFORWARD_VARIANT": variant,
    }
    server = start_bento_server(bento.tag, bento.bentoml_home, run, env=env)
    pod = f"upsell-{variant}-5d8f7-x{len(variant)}"
    labels = kubernetes_sd_labels(
        NAMESPACE, pod, variant_labels(md, served), container="bento", port_name="http"
    )
    address = f"127.0.0.1:{server.port}"
    prometheus.add_pod_target(f"pod-{variant}", address, labels)
    prometheus.wait_for_target_up(f"pod-{variant}", address, timeout=60)
    return server


def wait_for_requests(prometheus: LocalPrometheus) -> None:
    """Until the window holds MIN_REQUESTS model requests of each variant (and as many
    predictions), so the checks that follow have the data to decide on."""
    requests = analysis_queries(WINDOW_SECONDS).requests

    def both_served_enough() -> bool:
        # Asked 10 s back, before any tick the operator's queries round down to (5 s), and
        # with a margin: the bentos' pace varies with the machine's load.
        samples = prometheus.query(requests, at=time.time() - 10)
        counts = {s["metric"]["variant"]: float(s["value"][1]) for s in samples}
        wanted = 1.5 * MIN_REQUESTS
        return all(counts.get(v, 0) >= wanted for v in ("champion", CANDIDATE_VARIANT))

    wait_until(both_served_enough, 180, interval=1, what="both variants to serve")


@pytest.fixture(scope="module")
def scraped(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelDeployment]:
    """Champion and candidate bentos, both under steady traffic, until each has served
    minRequests model requests within the window."""
    md = canary(soom_bento.tag, prometheus.url)
    servers = [
        serve_as_pod(soom_bento, prometheus, md, v, tmp_path_factory.mktemp(v))
        for v in ("champion", CANDIDATE_VARIANT)
    ]
    traffic = [SteadyTraffic(server, "baseline", rate=20.0).start() for server in servers]
    try:
        wait_for_requests(prometheus)
        yield md
    finally:
        for running in traffic:
            running.stop()
        for server in servers:
            server.stop()


def test_devenv_relabels_pods_as_the_chart_does(pod_monitor: dict[str, Any]) -> None:
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert [relabel_config(r) for r in endpoint["relabelings"]] == list(POD_RELABELINGS)
    assert endpoint["honorLabels"] is True


def test_series_carry_namespace_and_pod_but_no_pod_labels(
    prometheus: LocalPrometheus, scraped: ModelDeployment
) -> None:
    series = prometheus.query('rollforward_variant_info{namespace="ml"}')
    assert {s["metric"]["variant"] for s in series} == {"champion", CANDIDATE_VARIANT}
    for sample in series:
        labels = sample["metric"]
        assert labels["pod"].startswith(f"upsell-{labels['variant']}-")
        assert not any(name.startswith("rollforward_io") for name in labels)
    # BentoML's `endpoint` (the request path) survives the scrape's own target labels.
    endpoints = prometheus.query(
        'count by (endpoint) (bentoml_service_request_total{namespace="ml"})'
    )
    assert "/predict" in {s["metric"]["endpoint"] for s in endpoints}


def test_canary_analysis_decides_on_what_the_chart_scrapes(
    prometheus: LocalPrometheus, scraped: ModelDeployment
) -> None:
    wait_for_requests(prometheus)
    champion = scraped.spec.variants[0].name
    plan = plan_fetch(scraped, OperatorSettings(), datetime.now(UTC))
    target = resolve_target(scraped, OperatorSettings(), read_secret=None)
    inputs = fetch_analysis(plan, PrometheusSource(), target)
    assert inputs is not None, "the operator would not measure this step"
    results = analyse(scraped, inputs, champion, scraped.spec.variants[0].bento or "")

    assert {r.name for r in results} >= {"errorRate", "latencyP99", "predictionDrift"}
    for result in results:
        assert result.outcome in {"Successful", "Failed"}, result
    assert verdict(results) != "Inconclusive"


def test_drift_check_decides_on_what_the_chart_scrapes(
    prometheus: LocalPrometheus, scraped: ModelDeployment
) -> None:
    wait_for_requests(prometheus)
    inputs = gather_drift(scraped, PrometheusSource(), OperatorSettings(), datetime.now(UTC))
    assert inputs is not None

    result = run_check(scraped, inputs)

    assert result.report.outcome in {DriftVerdict.DRIFT, DriftVerdict.NO_DRIFT}, result.report
