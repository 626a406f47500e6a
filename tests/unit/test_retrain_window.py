"""The retraining entrypoint's data window: where it starts, and how the result names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from rollforward.serving.contract import (
    ENV_DRIFT_BEGAN_AT,
    ENV_MODEL,
    ENV_PREDICTION_LOG_PREFIX,
    DataWindow,
    RetrainingResult,
)
from upsell import logged_data, retrain
from upsell.training import TrainingError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ONSET = NOW - timedelta(minutes=3)


@pytest.fixture
def store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Named, never contacted: logged_data.load is replaced below.
    monkeypatch.setenv("ROLLFORWARD_BENTO_STORE_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("ROLLFORWARD_BENTO_STORE_BUCKET", "bentos")


def _loaded(labelled: int, seen: dict[str, Any]) -> Any:
    def load(
        store: object, prefix: str, model: str, end: datetime, days: float, since: Any = None
    ) -> logged_data.LoggedData:
        seen.update(end=end, days=days, since=since, model=model, prefix=prefix)
        start = logged_data.window_start(end, days, since)
        frame = pd.DataFrame({"upgraded": [True] * labelled})
        return logged_data.LoggedData(frame, start, end, labelled * 2, labelled)

    return load


def test_the_operator_drift_onset_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_DRIFT_BEGAN_AT, ONSET.isoformat())
    assert retrain.RetrainSettings().drift_began_at == ONSET
    monkeypatch.setenv(ENV_DRIFT_BEGAN_AT, "")
    assert retrain.RetrainSettings().drift_began_at is None


@pytest.mark.usefixtures("store_env")
def test_with_since_drift_the_log_window_starts_at_the_onset_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(logged_data, "load", _loaded(300, seen))
    monkeypatch.setenv(ENV_DRIFT_BEGAN_AT, ONSET.isoformat())
    flags = retrain._parse(["--source", "logs", "--since-drift", "--window-days", "60"])

    frame, window = retrain.training_data(retrain.RetrainSettings(**flags), NOW)

    assert seen["since"] == ONSET and seen["days"] == 60 and seen["end"] == NOW
    assert len(frame) == 300
    assert window == DataWindow(
        source="prediction-log",
        start=ONSET,
        end=NOW,
        predictions=600,
        labelled=300,
        drift_began_at=ONSET,
    )


@pytest.mark.usefixtures("store_env")
def test_without_since_drift_the_onset_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(logged_data, "load", _loaded(300, seen))
    monkeypatch.setenv(ENV_DRIFT_BEGAN_AT, ONSET.isoformat())

    _, window = retrain.training_data(retrain.RetrainSettings(source="logs"), NOW)

    assert seen["since"] is None
    assert window.start == NOW - timedelta(days=retrain.DEFAULT_LOG_WINDOW_DAYS)
    assert window.drift_began_at is None


@pytest.mark.usefixtures("store_env")
def test_too_few_labelled_records_since_the_onset_fail_with_the_window_in_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logged_data, "load", _loaded(120, {}))
    monkeypatch.setenv(ENV_DRIFT_BEGAN_AT, ONSET.isoformat())
    settings = retrain.RetrainSettings(source="logs", since_drift=True, min_labelled=500)

    with pytest.raises(TrainingError) as raised:
        retrain.training_data(settings, NOW)

    message = str(raised.value)
    assert "only 120 labelled records" in message and "need at least 500" in message
    assert f"from {ONSET:%Y-%m-%d %H:%M}" in message and "drift onset" in message


def test_generated_data_names_its_scenario_and_rows() -> None:
    settings = retrain.RetrainSettings(scenario="concept-drift", rows=400, seed=3)

    frame, window = retrain.training_data(settings, NOW)

    assert window.source == "generated" and window.scenario == "concept-drift"
    assert window.predictions == window.labelled == len(frame) == 400
    assert window.start is not None and window.end is not None and window.start < window.end


def test_a_result_with_its_window_survives_the_termination_message() -> None:
    window = DataWindow(source="prediction-log", start=ONSET, end=NOW, predictions=9, labelled=7)
    result = RetrainingResult(version="upsell:x", accepted=True, trained_at=NOW, data_window=window)

    message = result.to_termination_message()

    assert '"from":' in message and '"labelled":7' in message
    assert RetrainingResult.from_termination_message(message).data_window == window


@pytest.mark.usefixtures("store_env")
def test_the_log_the_operator_names_is_read_and_named_in_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(logged_data, "load", _loaded(120, seen))
    monkeypatch.setenv(ENV_PREDICTION_LOG_PREFIX, "logs/shop/upsell")
    monkeypatch.setenv(ENV_MODEL, "upsell")

    with pytest.raises(TrainingError) as raised:
        retrain.training_data(retrain.RetrainSettings(source="logs"), NOW)

    assert (seen["prefix"], seen["model"]) == ("logs/shop/upsell", "upsell")
    assert "in the prediction log logs/shop/upsell/upsell/ from" in str(raised.value)
