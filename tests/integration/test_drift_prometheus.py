"""Drift detection against a real Prometheus scraping real `bentoml serve` processes.

Given the Soom bento serving generated traffic, when the operator's drift check runs
(gather through the real Prometheus adapter, then the pure check), then: baseline traffic
never alarms, concept drift is detected, a seasonal cycle alarms against the training
baseline but not against the seasonal one, and a Prometheus outage is inconclusive (no
decision either way) until Prometheus is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devenv.api_cases import example_manifest
from devenv.bento import BentoServer, start_bento_server
from devenv.prometheus import LocalPrometheus
from devenv.scrape_config import kubernetes_sd_labels
from devenv.soom_traffic import SteadyTraffic
from fixtures.fixtures_bento import BuiltBento
from rollforward.api import (
    ConditionType,
    DriftVerdict,
    ModelDeployment,
    VariantStatus,
    parse_model_deployment,
)
from rollforward.conditions import find_condition
from rollforward.drift.check import apply_check, run_check
from rollforward.prometheus import PrometheusSource
from rollforward.quality_estimate import estimate_quality
from rollforward.reconcile import gather_drift, gather_estimation
from rollforward.settings import OperatorSettings
from upsell.generator import GeneratorConfig, generate, payload_of
from upsell.schema import POSITIVE_LABEL

NAMESPACE = "ml"
MODEL = "upsell"
SEASON = timedelta(seconds=40)


def serve(
    bento: BuiltBento, prometheus: LocalPrometheus, variant: str, run_dir: Path
) -> BentoServer:
    env = {
        "ROLLFORWARD_MODEL": MODEL,
        "ROLLFORWARD_VERSION": bento.tag,
        "ROLLFORWARD_VARIANT": variant,
    }
    server = start_bento_server(bento.tag, bento.bentoml_home, run_dir, env=env)
    prometheus.add_pod_target(
        f"bento-{variant}", f"127.0.0.1:{server.port}", kubernetes_sd_labels(NAMESPACE, variant)
    )
    prometheus.wait_for_target_up(f"bento-{variant}", f"127.0.0.1:{server.port}", timeout=60)
    return server


def model_deployment(bento: str, champion: str, prometheus: str, **drift: Any) -> ModelDeployment:
    manifest = example_manifest()
    manifest["metadata"]["namespace"] = NAMESPACE
    spec = manifest["spec"]
    spec["model"] = MODEL
    spec["variants"] = [{"name": champion, "role": "champion", "bento": bento, "weight": 100}]
    spec["monitoring"] = {"prometheusUrl": prometheus}
    spec["drift"] = {
        "window": "20s",
        "interval": "5s",
        "minSamples": 100,
        "consecutiveBreaches": 2,
        "significance": 0.01,
        **drift,
    }
    return parse_model_deployment(manifest)


@dataclass
class DriftLoop:
    """The operator's drift path for one resource, without the cluster: gather, check, apply."""

    deployment: ModelDeployment
    source: PrometheusSource = field(
        default_factory=lambda: PrometheusSource(timeout_seconds=3, retries=1)
    )
    verdicts: list[DriftVerdict] = field(default_factory=list)

    def check(self) -> DriftVerdict | None:
        now = datetime.now(UTC)
        inputs = gather_drift(self.deployment, self.source, OperatorSettings(), now)
        if inputs is None:
            return None
        result = run_check(self.deployment, inputs)
        status, _ = apply_check(self.deployment, self.deployment.status, result, now)
        self.deployment = self.deployment.model_copy(update={"status": status})
        self.verdicts.append(result.report.outcome)
        return result.report.outcome

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(1)

    @property
    def drifted(self) -> bool:
        return self.deployment.status.drift_tracking.drifted


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as running:
        yield running


@pytest.fixture(scope="module")
def champion(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BentoServer]:
    server = serve(soom_bento, prometheus, "champion", tmp_path_factory.mktemp("champion"))
    yield server
    server.stop()


def test_baseline_traffic_never_alarms_then_concept_drift_is_detected(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, champion: BentoServer
) -> None:
    loop = DriftLoop(model_deployment(soom_bento.tag, "champion", prometheus.url))
    traffic = SteadyTraffic(champion, "baseline").start()
    try:
        time.sleep(22)  # fill the first window
        loop.run_for(35)
        assert DriftVerdict.NO_DRIFT in loop.verdicts, loop.verdicts
        assert not loop.drifted, loop.deployment.status.drift

        traffic.switch("concept-drift")
        deadline = time.monotonic() + 90
        while not loop.drifted and time.monotonic() < deadline:
            loop.check()
            time.sleep(1)
        assert loop.drifted, loop.verdicts
        report = loop.deployment.status.drift
        assert report is not None and report.p_value is not None and report.p_value < 0.01
        # Concept drift moves the positive rate by far more than the minimum effect.
        assert report.effect is not None and report.effect.lower >= report.effect.minimum == 0.03
        condition = find_condition(loop.deployment.status.conditions, ConditionType.DRIFTED)
        assert condition is not None and condition.status == "True"
        assert traffic.failures == 0
    finally:
        traffic.stop()


def test_prometheus_outage_is_inconclusive_and_recovers(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, champion: BentoServer
) -> None:
    loop = DriftLoop(model_deployment(soom_bento.tag, "champion", prometheus.url))
    traffic = SteadyTraffic(champion, "baseline").start()
    try:
        time.sleep(2)
        loop.run_for(6)
        before = loop.deployment.status.drift_tracking
        prometheus.stop()
        outage = len(loop.verdicts)
        loop.run_for(11)
        during = loop.verdicts[outage:]
        assert during and set(during) == {DriftVerdict.INCONCLUSIVE}, during
        status = loop.deployment.status
        monitoring = find_condition(status.conditions, ConditionType.MONITORING_AVAILABLE)
        assert monitoring is not None and monitoring.status == "False"
        assert monitoring.reason == "PrometheusUnreachable"
        assert status.drift_tracking.drifted == before.drifted
        assert status.drift_tracking.breach_streak == before.breach_streak

        prometheus.start()
        time.sleep(22)  # the restarted Prometheus scrapes a full window again
        recovered = len(loop.verdicts)
        loop.run_for(11)
        assert DriftVerdict.INCONCLUSIVE not in loop.verdicts[recovered + 1 :], loop.verdicts
        monitoring = find_condition(
            loop.deployment.status.conditions, ConditionType.MONITORING_AVAILABLE
        )
        assert monitoring is not None and monitoring.status == "True"
    finally:
        traffic.stop()


def test_seasonal_cycle_alarms_against_training_but_not_against_seasonal_baseline(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = serve(soom_bento, prometheus, "seasonal", tmp_path_factory.mktemp("seasonal"))
    config = GeneratorConfig(period=SEASON, seasonal_amplitude=0.45)
    traffic = SteadyTraffic(server, "seasonality", config=config).start()
    offset = f"{int(SEASON.total_seconds())}s"
    # This test is about the baseline, not the effect gate: with about 200 predictions per
    # 10 s window the 99% interval on the effect is +/-9 points wide, so minEffect 0.03 would
    # need a swing of 12 points to fire (the gate has its own unit tests and bench).
    against_season = DriftLoop(
        model_deployment(
            soom_bento.tag,
            "seasonal",
            prometheus.url,
            window="10s",
            minEffect=0.0,
            baseline={"kind": "seasonal", "offset": offset},
        )
    )
    against_training = DriftLoop(
        model_deployment(soom_bento.tag, "seasonal", prometheus.url, window="10s", minEffect=0.0)
    )
    try:
        time.sleep(SEASON.total_seconds() + 12)  # one full cycle plus a window of history
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            against_season.check()
            against_training.check()
            time.sleep(1)
        assert DriftVerdict.NO_DRIFT in against_season.verdicts, against_season.verdicts
        assert not against_season.drifted, against_season.deployment.status.drift
        assert against_training.drifted, against_training.verdicts
    finally:
        traffic.stop()
        server.stop()


def test_estimated_accuracy_of_locality_traffic_matches_the_realized_one(
    soom_bento: BuiltBento, prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    """Given the bento serving locality sign-ups (covariate shift), when the operator
    estimates quality from Prometheus alone, then the estimate is within 2 points of the
    accuracy the labels later reveal."""
    server = serve(soom_bento, prometheus, "estimate", tmp_path)
    try:
        shifted = generate("locality", 3000, seed=21)
        rows = [payload_of(row._asdict()) for row in shifted.itertuples(index=False)]
        predicted: list[str] = []
        for start in range(0, len(rows), 500):
            code, answer = server.post("/predict", rows[start : start + 500])
            assert code == 200
            predicted += [p["label"] for p in answer]
        realized = float(np.mean((np.array(predicted) == POSITIVE_LABEL) == shifted["upgraded"]))
        scraped = 'sum(rollforward_prediction_score_count{variant="estimate"})'
        deadline = time.monotonic() + 30
        while (prometheus.query_value(scraped) or 0) < len(rows) and time.monotonic() < deadline:
            time.sleep(0.5)
        # Checks run at the interval's aligned tick (5 s): let one pass, so it sees everything.
        time.sleep(6)
        resource = model_deployment(soom_bento.tag, "estimate", prometheus.url, window="2m")
        serving = VariantStatus(name="estimate", role="champion", version=soom_bento.tag)
        deployment = resource.model_copy(
            update={"status": resource.status.model_copy(update={"variants": [serving]})}
        )

        inputs = gather_estimation(deployment, PrometheusSource(), OperatorSettings(), _now())
        assert inputs is not None
        estimated = estimate_quality(deployment, inputs).variants[0]

        assert estimated.accuracy is not None, estimated.reason
        assert estimated.samples >= len(rows) * 0.9
        assert abs(estimated.accuracy.value - realized) <= 0.02
        assert estimated.precision is not None and estimated.recall is not None
    finally:
        server.stop()


def _now() -> datetime:
    return datetime.now(UTC)
