"""Instrumentation turns predictions, anomalies and feedback into the metric contract."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from devenv.bento import metric_value, parse_metrics
from rollforward.serving import contract
from rollforward.serving.calibration import ScoreCalibration
from rollforward.serving.contract import AnomalyKind
from rollforward.serving.inputs import InputAnomaly
from rollforward.serving.instrumentation import Instrumentation
from rollforward.serving.metrics import MetricIdentity, ServingMetrics
from rollforward.serving.settings import ServingSettings

LABELS = ("stay", "upgrade")
IDENTITY = {"model": "soom", "version": "v2"}


KEY = "a-feedback-key-of-enough-length"


def make(
    registry: CollectorRegistry,
    segment_field: str = "",
    max_segments: int = 20,
    key: str = KEY,
    version: str = "v2",
    variant: str = "challenger",
    clock: Callable[[], float] = time.time,
) -> Instrumentation:
    config = ServingSettings(
        model="soom",
        version=version,
        variant=variant,
        segment_field=segment_field,
        max_segments=max_segments,
        feedback_secret=key,
    )
    metrics = ServingMetrics(MetricIdentity("soom", version, variant), registry)
    return Instrumentation(
        config,
        LABELS,
        "upgrade",
        {"stay": 0.7, "upgrade": 0.3},
        metrics=metrics,
        logger=logging.getLogger("test.serving"),
        clock=clock,
    )


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return parse_metrics(generate_latest(registry).decode())


def test_the_variant_info_series_names_the_process_identity() -> None:
    registry = CollectorRegistry()
    make(registry)

    info = {key: v for key, v in scrape(registry).items() if key[0] == contract.VARIANT_INFO}

    assert info == {
        (contract.VARIANT_INFO, frozenset({**IDENTITY, "variant": "challenger"}.items())): 1.0
    }


def test_baseline_and_zero_prediction_series_exist_before_any_traffic() -> None:
    registry = CollectorRegistry()
    make(registry)

    samples = scrape(registry)

    assert metric_value(samples, contract.BASELINE_RATIO, label="upgrade", **IDENTITY) == 0.3
    assert metric_value(samples, contract.BASELINE_RATIO, label="stay", **IDENTITY) == 0.7
    for label in LABELS:
        key = (
            contract.PREDICTIONS_TOTAL,
            frozenset({**IDENTITY, "variant": "challenger", "label": label, "segment": ""}.items()),
        )
        assert samples[key] == 0.0


def test_predictions_counted_by_label_and_bounded_segment() -> None:
    registry = CollectorRegistry()
    instrumentation = make(registry, segment_field="region", max_segments=2)

    for region in ["NA", "EMEA", "APAC", "LATAM", "NA"]:
        instrumentation.record_prediction("upgrade", 0.8, {"region": region})
    instrumentation.record_prediction("stay", 0.1, {})
    instrumentation.record_prediction("stay", 0.2, {"region": {"nested": 1}})
    samples = scrape(registry)

    def count(label: str, segment: str) -> float:
        return metric_value(
            samples, contract.PREDICTIONS_TOTAL, label=label, segment=segment, **IDENTITY
        )

    assert count("upgrade", "NA") == 2 and count("upgrade", "EMEA") == 1
    assert count("upgrade", "other") == 2  # APAC and LATAM exceed max_segments
    assert count("stay", "") == 1 and count("stay", "other") == 1
    assert metric_value(samples, f"{contract.PREDICTION_SCORE}_count", **IDENTITY) == 7
    assert metric_value(samples, f"{contract.PREDICTION_SCORE}_bucket", le="0.5") == 2


def test_anomalies_counted_and_logged_as_one_json_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    instrumentation = make(registry)
    anomalies = [
        InputAnomaly("country", AnomalyKind.UNKNOWN_CATEGORY, "ZZ"),
        InputAnomaly("meetings", AnomalyKind.MISSING),
    ]

    with caplog.at_level(logging.WARNING, logger="test.serving"):
        instrumentation.note_anomalies(anomalies, index=3)
    samples = scrape(registry)

    assert (
        metric_value(
            samples,
            contract.INPUT_ANOMALIES_TOTAL,
            field="country",
            kind="unknown_category",
            **IDENTITY,
        )
        == 1
    )
    [record] = caplog.records
    line = json.loads(record.getMessage())
    assert line["event"] == "input_anomalies" and line["record"] == 3
    assert line["variant"] == "challenger"
    assert {"field": "country", "kind": "unknown_category", "detail": "ZZ"} in line["anomalies"]


def test_feedback_counts_outcomes_once_and_rejects_strangers() -> None:
    registry = CollectorRegistry()
    instrumentation = make(registry)
    prediction_id = instrumentation.record_prediction("upgrade", 0.9, {})

    first = instrumentation.record_feedback({"predictionId": prediction_id, "label": "stay"})
    again = instrumentation.record_feedback({"predictionId": prediction_id, "label": "stay"})
    stranger = instrumentation.record_feedback({"predictionId": "zz.upgrade.zz", "label": 1})
    samples = scrape(registry)

    assert first.accepted and not again.accepted and not stranger.accepted
    assert "duplicate_feedback" in again.reason
    assert (
        metric_value(
            samples, contract.OUTCOMES_TOTAL, label="stay", predicted="upgrade", **IDENTITY
        )
        == 1
    )
    for kind in ("duplicate_feedback", "unknown_prediction_id"):
        assert metric_value(samples, contract.INPUT_ANOMALIES_TOTAL, kind=kind) == 1


def test_disabled_instrumentation_predicts_without_metrics() -> None:
    config = ServingSettings(model="soom", version="v2", instrument=False)
    instrumentation = Instrumentation(
        config, LABELS, "upgrade", {}, metrics=None, logger=logging.getLogger("t")
    )

    assert instrumentation.record_prediction("stay", 0.1, {}) == ""
    assert not instrumentation.enabled


def test_settings_come_from_the_operator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_MODEL, "soom")
    monkeypatch.setenv(contract.ENV_VERSION, "abc")
    monkeypatch.setenv(contract.ENV_VARIANT, "canary")
    monkeypatch.setenv(contract.ENV_SEGMENT_FIELD, "country")

    settings = ServingSettings()

    assert (settings.model, settings.version, settings.variant, settings.segment_field) == (
        "soom",
        "abc",
        "canary",
        "country",
    )


def outcomes(registry: CollectorRegistry) -> float:
    samples = scrape(registry)
    return sum(v for (name, _), v in samples.items() if name == contract.OUTCOMES_TOTAL)


def test_without_a_key_feedback_is_off_and_ids_are_not_issued() -> None:
    for key in ("", "soom", "short-key-15chr"):
        registry = CollectorRegistry()
        instrumentation = make(registry, key=key)
        prediction_id = instrumentation.record_prediction("stay", 0.1, {})
        verdict = instrumentation.record_feedback({"predictionId": "x.stay.y", "label": "stay"})
        assert not instrumentation.feedback_enabled
        assert prediction_id == ""
        assert not verdict.accepted and "ROLLFORWARD_FEEDBACK_SECRET" in verdict.reason
        assert outcomes(registry) == 0


def test_ids_verify_across_replicas_and_versions_sharing_the_key() -> None:
    issued = make(CollectorRegistry(), version="v1", variant="champion")
    prediction_id = issued.record_prediction("upgrade", 0.9, {})
    other = CollectorRegistry()
    verdict = make(other, version="v2", variant="candidate").record_feedback(
        {"predictionId": prediction_id, "label": "upgrade"}
    )
    assert verdict.accepted
    assert outcomes(other) == 1


def test_forged_ids_are_anomalies_and_never_outcomes() -> None:
    forger = make(CollectorRegistry(), key="the-model-name-is-not-the-key")
    forged = forger.record_prediction("upgrade", 0.9, {})
    tampered = make(CollectorRegistry()).record_prediction("stay", 0.1, {})
    tampered = tampered.replace(".stay.", ".upgrade.")
    registry = CollectorRegistry()
    victim = make(registry)
    verdicts = [
        victim.record_feedback({"predictionId": forged, "label": "upgrade"}),
        victim.record_feedback({"predictionId": tampered, "label": "upgrade"}),
    ]
    assert not any(v.accepted for v in verdicts)
    assert outcomes(registry) == 0
    samples = scrape(registry)
    assert metric_value(samples, contract.INPUT_ANOMALIES_TOTAL, kind="unknown_prediction_id") == 2


def test_the_training_calibration_is_exported_on_the_histogram_buckets() -> None:
    registry = CollectorRegistry()
    instrumentation = make(registry)
    table = ScoreCalibration(upper_edges=[0.5, 1.0], samples=[10, 20], positives=[1, 15])

    exported = instrumentation.publish_calibration(table.model_dump(mode="json", by_alias=True))
    samples = scrape(registry)

    assert exported
    assert metric_value(samples, contract.SCORE_CALIBRATION, le="0.5", **IDENTITY) == 0.1
    assert metric_value(samples, contract.SCORE_CALIBRATION, le="1.0", **IDENTITY) == 0.75
    assert metric_value(samples, contract.SCORE_CALIBRATION_SAMPLES, le="1.0", **IDENTITY) == 20
    assert metric_value(samples, contract.DECISION_THRESHOLD, **IDENTITY) == 0.5


def test_a_model_without_a_valid_calibration_exports_none() -> None:
    registry = CollectorRegistry()
    instrumentation = make(registry)

    assert not instrumentation.publish_calibration(None)
    assert not instrumentation.publish_calibration({"samples": [1], "positives": [2]})
    names = {name for name, _ in scrape(registry)}
    assert contract.SCORE_CALIBRATION not in names


def test_outcome_counts_for_the_variant_that_predicted_with_its_label_delay() -> None:
    # Given a challenger prediction at t=1000 and a champion process sharing the key,
    clock = [1000.0]
    challenger = make(
        CollectorRegistry(), version="v2-gbm", variant="challenger", clock=lambda: clock[0]
    )
    prediction_id = challenger.record_prediction("upgrade", 0.8, {})
    registry = CollectorRegistry()
    champion = make(registry, version="v1", variant="champion", clock=lambda: clock[0])
    # when its label reaches the champion 2 hours later,
    clock[0] += 7200.0
    assert champion.record_feedback({"predictionId": prediction_id, "label": "upgrade"}).accepted
    # then the outcome and the delay are the challenger's, not the receiving champion's.
    samples = scrape(registry)
    origin = {"model": "soom", "version": "v2-gbm", "variant": "challenger"}
    assert metric_value(samples, contract.OUTCOMES_TOTAL, label="upgrade", **origin) == 1
    assert metric_value(samples, contract.OUTCOMES_TOTAL, variant="champion") == 0
    assert metric_value(samples, f"{contract.LABEL_DELAY_SECONDS}_sum", **origin) == 7200.0
    assert metric_value(samples, f"{contract.LABEL_DELAY_SECONDS}_count", **origin) == 1


def test_a_body_without_feedback_items_is_an_anomaly_and_counts_nothing() -> None:
    registry = CollectorRegistry()
    make(registry).reject_payload("str")
    samples = scrape(registry)
    assert metric_value(samples, contract.INPUT_ANOMALIES_TOTAL, field="feedback") == 1
    assert outcomes(registry) == 0
