"""The Soom bento under a real `bentoml serve`: predictions, the metric contract, 4xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devenv.bento import BentoServer, metric_value
from fixtures.fixtures_bento import SOOM_SERVER_ENV
from rollforward.serving import contract
from rollforward.serving.prediction_ids import PredictionIdCodec
from upsell.generator import records

CHAMPION = {"model": "soom-upsell", "version": "v1"}


@pytest.fixture(scope="module")
def good_records() -> list[dict[str, object]]:
    return list(records("baseline", 40, seed=11))


def test_single_record_gets_one_labelled_prediction(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    status, body = soom_server.post("/predict", good_records[0])

    assert status == 200
    assert body["label"] in ("stay", "upgrade")
    assert 0.0 <= body["score"] <= 1.0
    assert (body["label"] == "upgrade") == (body["score"] >= 0.5)
    assert body["predictionId"]
    assert (body["model"], body["version"], body["variant"]) == ("soom-upsell", "v1", "champion")
    assert body["anomalies"] == []


def test_batch_forms_return_lists_in_order(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    batch = good_records[:5]
    singles = [soom_server.post("/predict", r)[1]["score"] for r in batch]

    status_a, as_array = soom_server.post("/predict", batch)
    status_b, as_object = soom_server.post("/predict", {"records": batch})

    assert (status_a, status_b) == (200, 200)
    assert [p["score"] for p in as_array] == singles
    assert [p["score"] for p in as_object] == singles
    assert len({p["predictionId"] for p in as_array}) == 5


def test_odd_record_still_predicted_and_each_oddity_counted(soom_server: BentoServer) -> None:
    before = soom_server.metrics()
    odd = {
        "country": "ZZ",
        "event_types": ["meeting", "festival"],
        "meetings": "7",
        "minutes": None,
        "limit_hits": -3,
        "had_paid_plan": "yes",
        "favourite_colour": "teal",
    }

    status, body = soom_server.post("/predict", odd)
    after = soom_server.metrics()

    assert status == 200 and body["label"] in ("stay", "upgrade")
    expected = {
        ("country", "unknown_category"),
        ("event_types", "unknown_category"),
        ("meetings", "coerced"),
        ("minutes", "null"),
        ("limit_hits", "out_of_range"),
        ("had_paid_plan", "coerced"),
        ("_extra", "extra"),
        ("card_on_file", "missing"),
    }
    assert expected <= {(a["field"], a["kind"]) for a in body["anomalies"]}
    for field, kind in expected:
        delta = metric_value(
            after, contract.INPUT_ANOMALIES_TOTAL, field=field, kind=kind, **CHAMPION
        ) - metric_value(before, contract.INPUT_ANOMALIES_TOTAL, field=field, kind=kind)
        assert delta == 1, (field, kind)
    log = soom_server.process.log_tail(200)
    assert '"event": "input_anomalies"' in log and '"detail": "festival"' in log


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"   ", 400),
        (b"not json", 400),
        (b'{"a": NaN}', 400),
        (b"{", 400),
        (b"42", 422),
        (b'"a string"', 422),
        (b"[1, 2]", 422),
        (b'{"records": {"a": 1}}', 422),
    ],
)
def test_garbage_gets_a_clear_4xx(soom_server: BentoServer, body: bytes, status: int) -> None:
    got, answer = soom_server.post("/predict", body)

    assert got == status
    assert isinstance(answer, dict) and answer["error"]


def test_predictions_counted_by_label_segment_and_score(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    before = soom_server.metrics()
    _, predictions = soom_server.post("/predict", good_records)
    after = soom_server.metrics()

    for region in {str(r["region"]) for r in good_records}:
        for label in ("stay", "upgrade"):
            sent = sum(
                1
                for r, p in zip(good_records, predictions, strict=True)
                if r["region"] == region and p["label"] == label
            )
            labels = {**CHAMPION, "variant": "champion", "label": label, "segment": region}
            delta = metric_value(after, contract.PREDICTIONS_TOTAL, **labels) - metric_value(
                before, contract.PREDICTIONS_TOTAL, **labels
            )
            assert delta == sent
    count = f"{contract.PREDICTION_SCORE}_count"
    assert metric_value(after, count, variant="champion", **CHAMPION) - metric_value(
        before, count
    ) == len(good_records)
    buckets = {dict(ls)["le"] for (n, ls) in after if n == f"{contract.PREDICTION_SCORE}_bucket"}
    assert {"0.5", "1.0", "+Inf"} <= buckets


def test_baseline_ratio_is_the_training_distribution(soom_server: BentoServer) -> None:
    samples = soom_server.metrics()

    stay = metric_value(samples, contract.BASELINE_RATIO, label="stay", **CHAMPION)
    upgrade = metric_value(samples, contract.BASELINE_RATIO, label="upgrade", **CHAMPION)

    assert stay + upgrade == pytest.approx(1.0, abs=1e-6)
    assert 0.15 < upgrade < 0.5


def test_feedback_counts_outcomes_against_the_predicted_label(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    _, predictions = soom_server.post("/predict", good_records[:4])
    before = soom_server.metrics()
    truth = ["upgrade", "stay", True, 0]
    items = [
        {"predictionId": p["predictionId"], "label": t}
        for p, t in zip(predictions, truth, strict=True)
    ]

    status, answer = soom_server.post("/feedback", {"feedback": items})
    status_dup, duplicate = soom_server.post("/feedback", items[0])
    status_bad, unknown = soom_server.post("/feedback", {"predictionId": "nope", "label": "stay"})
    after = soom_server.metrics()

    assert (status, status_dup, status_bad) == (200, 200, 200)
    assert answer == {"accepted": 4, "rejected": []}
    assert duplicate["accepted"] == 0 and unknown["accepted"] == 0
    true_labels = ["upgrade", "stay", "upgrade", "stay"]
    expected: dict[tuple[str, str], int] = {}
    for p, t in zip(predictions, true_labels, strict=True):
        expected[(t, p["label"])] = expected.get((t, p["label"]), 0) + 1
    for (label, predicted), count in expected.items():
        delta = metric_value(
            after, contract.OUTCOMES_TOTAL, label=label, predicted=predicted, **CHAMPION
        ) - metric_value(before, contract.OUTCOMES_TOTAL, label=label, predicted=predicted)
        assert delta == count
    for kind in ("duplicate_feedback", "unknown_prediction_id"):
        delta = metric_value(
            after, contract.INPUT_ANOMALIES_TOTAL, field="predictionId", kind=kind
        ) - metric_value(before, contract.INPUT_ANOMALIES_TOTAL, field="predictionId", kind=kind)
        assert delta == 1


def test_bentoml_request_metrics_carry_endpoint_and_status(soom_server: BentoServer) -> None:
    soom_server.post("/predict", b"not json")
    samples = soom_server.metrics()

    ok = metric_value(
        samples, contract.BENTOML_REQUESTS_TOTAL, endpoint="/predict", http_response_code="200"
    )
    bad = metric_value(
        samples, contract.BENTOML_REQUESTS_TOTAL, endpoint="/predict", http_response_code="400"
    )
    latency = metric_value(
        samples, f"{contract.BENTOML_REQUEST_DURATION}_count", endpoint="/predict"
    )
    assert ok > 0 and bad > 0 and latency >= ok + bad
    # BentoML creates the 200 and 500 series at zero, so a 5xx shows as a positive value.
    assert not any(
        value > 0
        for (n, ls), value in samples.items()
        if n == contract.BENTOML_REQUESTS_TOTAL and dict(ls)["http_response_code"].startswith("5")
    )


def test_health_endpoints(soom_server: BentoServer) -> None:
    assert soom_server.get(contract.READINESS_PATH)[0] == 200
    assert soom_server.get(contract.LIVENESS_PATH)[0] == 200
    assert soom_server.env == SOOM_SERVER_ENV


def test_metric_families_have_the_contract_types(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    _, prediction = soom_server.post("/predict", {**good_records[0], "extra": 1})
    soom_server.post("/feedback", {"predictionId": prediction["predictionId"], "label": "stay"})

    _, text = soom_server.get(contract.METRICS_PATH)

    types = {
        family.name: family.type
        for family in text_string_to_metric_families(text)
        if family.name.startswith("rollforward_")
    }

    assert types == {
        contract.PREDICTIONS_TOTAL.removesuffix("_total"): "counter",
        contract.PREDICTION_SCORE: "histogram",
        contract.BASELINE_RATIO: "gauge",
        contract.INPUT_ANOMALIES_TOTAL.removesuffix("_total"): "counter",
        contract.OUTCOMES_TOTAL.removesuffix("_total"): "counter",
        # No bento store here: the label is counted with the per-process check only.
        contract.FEEDBACK_UNVERIFIED_TOTAL.removesuffix("_total"): "counter",
        contract.LABEL_DELAY_SECONDS: "histogram",
        contract.VARIANT_INFO: "gauge",
        # The bento's training records its calibration (estimated quality before labels).
        contract.SCORE_CALIBRATION: "gauge",
        contract.SCORE_CALIBRATION_SAMPLES: "gauge",
        contract.DECISION_THRESHOLD: "gauge",
    }


def _outcome_total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return sum(v for (name, _), v in samples.items() if name == contract.OUTCOMES_TOTAL)


def _feedback_anomalies(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == contract.INPUT_ANOMALIES_TOTAL
        and dict(labels)["field"] in ("predictionId", "label", "feedback")
    )


def test_feedback_errors_never_change_the_counts_and_are_counted_as_anomalies(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    # Given two predictions, one of them already labelled once,
    _, predictions = soom_server.post("/predict", good_records[5:7])
    first, second = (p["predictionId"] for p in predictions)
    status, answer = soom_server.post("/feedback", {"predictionId": first, "label": "stay"})
    assert status == 200 and answer == {"accepted": 1, "rejected": []}
    before = soom_server.metrics()
    nonce, label, origin, _issued, mac = second.split(".")
    guessed = PredictionIdCodec("soom-upsell", ["stay", "upgrade"])
    errors: list[object] = [
        {"predictionId": first, "label": "upgrade"},  # a duplicate, even with another label
        {"predictionId": "0123456789abcdef.stay.Y2hhbXBpb24KdjE.1.0123456789ab", "label": "stay"},
        {"predictionId": guessed.issue("upgrade", "champion", "v1", 0), "label": "upgrade"},
        {"predictionId": ".".join([nonce, label, origin, "1", mac]), "label": "stay"},  # delay
        {"predictionId": second, "label": "maybe"},
        {"predictionId": second},
        {"label": "stay"},
        "stay",
    ]
    # when every kind of bad feedback arrives, item by item and as bodies,
    status, answer = soom_server.post("/feedback", errors)
    statuses = [
        soom_server.post("/feedback", body)[0]
        for body in ("just text", [{"predictionId": second, "label": "stay"}] * 1001, b"{nope")
    ]
    after = soom_server.metrics()
    # then nothing is counted as an outcome or a label delay, and each item is an anomaly.
    assert status == 200 and answer["accepted"] == 0
    assert [r["index"] for r in answer["rejected"]] == list(range(len(errors)))
    assert statuses == [422, 422, 400]
    assert _outcome_total(after) == _outcome_total(before)
    delays = f"{contract.LABEL_DELAY_SECONDS}_count"
    assert metric_value(after, delays) == metric_value(before, delays)
    # The non-JSON body is refused before the service sees it: BentoML counts it as a 400.
    assert _feedback_anomalies(after) - _feedback_anomalies(before) == len(errors) + 2


def test_outcomes_carry_the_variant_and_version_of_the_prediction(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    _, prediction = soom_server.post("/predict", good_records[8])
    before = soom_server.metrics()
    soom_server.post("/feedback", {"predictionId": prediction["predictionId"], "label": 1})
    after = soom_server.metrics()

    origin = {**CHAMPION, "variant": "champion"}
    delta = metric_value(after, contract.OUTCOMES_TOTAL, label="upgrade", **origin)
    assert delta - metric_value(before, contract.OUTCOMES_TOTAL, label="upgrade", **origin) == 1
    delays = f"{contract.LABEL_DELAY_SECONDS}_count"
    assert metric_value(after, delays, **origin) - metric_value(before, delays, **origin) == 1


def _variant_header(
    server: BentoServer, path: str, body: bytes | None = None
) -> tuple[int, list[str]]:
    request = urllib.request.Request(
        server.url + path, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get_all(contract.VARIANT_HEADER) or []
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_all(contract.VARIANT_HEADER) or []


def test_every_answer_names_the_variant(
    soom_server: BentoServer, good_records: list[dict[str, object]]
) -> None:
    """The router passes this header on as its served-by header (a fallback to the champion
    names the champion): every path and status carries it, once."""
    record = json.dumps(good_records[0]).encode()
    answers = {
        "predict": _variant_header(soom_server, contract.PREDICT_PATH, record),
        "bad body": _variant_header(soom_server, contract.PREDICT_PATH, b"{oops"),
        "wrong shape": _variant_header(soom_server, contract.PREDICT_PATH, b"42"),
        "readyz": _variant_header(soom_server, contract.READINESS_PATH),
        "metrics": _variant_header(soom_server, contract.METRICS_PATH),
        "no such path": _variant_header(soom_server, "/nothing-here"),
    }
    assert {k: v[0] for k, v in answers.items()} == {
        "predict": 200,
        "bad body": 400,
        "wrong shape": 422,
        "readyz": 200,
        "metrics": 200,
        "no such path": 404,
    }
    assert {k: v[1] for k, v in answers.items()} == {key: ["champion"] for key in answers}
