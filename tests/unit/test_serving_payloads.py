"""The shapes a /predict body may take."""

from __future__ import annotations

from typing import Any

import pytest

from rollforward.serving.payloads import PayloadError, PredictionRequest, prediction_request


def test_single_record_and_both_batch_forms() -> None:
    one = {"a": 1}

    assert prediction_request(one) == PredictionRequest([one], batch=False)
    assert prediction_request([one, one]) == PredictionRequest([one, one], batch=True)
    assert prediction_request({"records": [one]}) == PredictionRequest([one], batch=True)
    assert prediction_request([]) == PredictionRequest([], batch=True)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (42, "got int"),
        ("x", "got str"),
        (None, "got NoneType"),
        ([{"a": 1}, 3, "x"], "index 1, 2"),
        ({"records": {"a": 1}}, "must be an array"),
        ([{}] * 1001, "at most 1000"),
    ],
)
def test_wrong_shapes_are_explained(payload: Any, message: str) -> None:
    result = prediction_request(payload)

    assert isinstance(result, PayloadError)
    assert message in result.message
