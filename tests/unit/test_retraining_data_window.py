"""The data window of a retraining: the drift onset the operator tells the Job, and the window
the Job reports back, recorded in status and shown; too few labels fail the Job, reported."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fixtures.decision_inputs import T0, deployment, finished_job, job_pod, result
from rollforward.api import (
    DriftTracking,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    TrainingData,
)
from rollforward.api import annotations as requests
from rollforward.events import Event
from rollforward.kubectl.render import training_data_text
from rollforward.lifecycle import LifecycleInputs, advance
from rollforward.serving.contract import ENV_DRIFT_BEGAN_AT, DataWindow, RetrainingResult

pytestmark = pytest.mark.unit

ONSET = T0 - timedelta(minutes=7)
LOGS = DataWindow(
    source="prediction-log",
    start=ONSET,
    end=T0 + timedelta(minutes=1),
    predictions=900,
    labelled=640,
    drift_began_at=ONSET,
)


def drifted(onset: object = ONSET) -> ModelDeployment:
    tracking = DriftTracking(
        drifted=True, breach_streak=2, checks=4, drifted_since=T0, drift_began_at=onset
    )
    return deployment(ModelDeploymentStatus(drift_tracking=tracking))


def job_env(md: ModelDeployment) -> dict[str, str]:
    (job,) = advance(md, LifecycleInputs(), T0).jobs
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def finish(
    md: ModelDeployment, message: str, succeeded: bool = True
) -> tuple[ModelDeployment, list[Event]]:
    first = advance(md, LifecycleInputs(), T0)
    assert first.status.retraining is not None
    name = first.status.retraining.job_name
    inputs = LifecycleInputs(
        jobs={name: finished_job(name, succeeded)}, job_pods={name: job_pod(message)}
    )
    started = md.model_copy(update={"status": first.status})
    done = advance(started, inputs, T0 + timedelta(minutes=2))
    return started.model_copy(update={"status": done.status}), list(done.events)


def test_a_drift_triggered_job_is_told_where_the_drifted_data_began() -> None:
    assert job_env(drifted())[ENV_DRIFT_BEGAN_AT] == ONSET.isoformat()


def test_a_job_outside_a_drift_episode_is_told_no_onset() -> None:
    quiet = deployment(ModelDeploymentStatus(), annotations={requests.RETRAIN: "now"})
    assert ENV_DRIFT_BEGAN_AT not in job_env(quiet)
    assert ENV_DRIFT_BEGAN_AT not in job_env(drifted(onset=None))


@pytest.mark.parametrize(
    ("accepted", "phase"), [(True, JobPhase.SUCCEEDED), (False, JobPhase.REJECTED)]
)
def test_the_window_the_job_reports_is_recorded_whatever_the_gate_says(
    accepted: bool, phase: JobPhase
) -> None:
    reported = result(holdout_auc=0.82 if accepted else 0.6).model_copy(
        update={"data_window": LOGS}
    )

    md, _ = finish(drifted(), reported.to_termination_message())

    retraining = md.status.retraining
    assert retraining is not None and retraining.phase is phase
    assert retraining.training_data == TrainingData(
        source="prediction-log",
        start=ONSET,
        end=T0 + timedelta(minutes=1),
        predictions=900,
        labelled=640,
        drift_began_at=ONSET,
    )


def test_a_result_without_a_window_records_none() -> None:
    md, _ = finish(drifted(), result().to_termination_message())
    assert md.status.retraining is not None and md.status.retraining.training_data is None


def test_too_few_labelled_records_fail_the_attempt_and_the_reason_is_reported() -> None:
    reason = (
        "retraining failed: only 120 labelled records in the prediction log "
        "logs/default/upsell/upsell/ from "
        f"{ONSET:%Y-%m-%d %H:%M} to {T0:%Y-%m-%d %H:%M} UTC (300 predictions logged); "
        "need at least 200 (the window starts at the drift onset)"
    )
    message = RetrainingResult(
        version="", accepted=False, reasons=[reason], trained_at=T0
    ).to_termination_message()

    md, events = finish(drifted(), message, succeeded=False)

    retraining = md.status.retraining
    assert retraining is not None and retraining.phase is JobPhase.FAILED
    assert reason in retraining.message and retraining.next_attempt_at is not None
    assert any(e.reason == "JobFailed" and reason in e.message for e in events)


def test_the_window_is_one_readable_line() -> None:
    data = TrainingData(
        source="prediction-log",
        start=ONSET,
        end=T0,
        predictions=900,
        labelled=640,
        drift_began_at=ONSET,
    )
    assert training_data_text(data) == (
        f"prediction-log {ONSET:%Y-%m-%d %H:%M:%S} to {T0:%Y-%m-%d %H:%M:%S} UTC: "
        "640 labelled of 900 predictions (from the drift onset)"
    )
    generated = TrainingData(source="generated", labelled=5000, predictions=5000)
    assert training_data_text(generated) == "generated: 5000 rows"
