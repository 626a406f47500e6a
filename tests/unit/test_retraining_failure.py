"""A failed retraining Job is reported with the entrypoint's own reason."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.decision_inputs import T0
from rollforward.retraining import read_job
from rollforward.serving.contract import RetrainingResult

pytestmark = pytest.mark.unit

FAILED_JOB = {
    "status": {
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    }
}


def _pod(message: str) -> dict[str, Any]:
    terminated = {"state": {"terminated": {"exitCode": 1, "message": message}}}
    return {"status": {"containerStatuses": [terminated]}}


def test_the_reason_of_too_few_labelled_records_reaches_the_operator_whole() -> None:
    reason = (
        "retraining failed: only 120 labelled records in the prediction log "
        "logs/default/upsell/upsell/ from "
        "2026-11-01 00:00 to 2026-12-01 00:00 UTC (4000 predictions logged); need at least 200"
    )
    message = RetrainingResult(
        version="", accepted=False, reasons=[reason], trained_at=T0
    ).to_termination_message()

    outcome = read_job(FAILED_JOB, _pod(message))

    assert outcome.finished and not outcome.succeeded
    assert outcome.problem == f"Job failed: BackoffLimitExceeded ({reason})"


def test_a_message_that_is_no_result_is_shown_raw() -> None:
    outcome = read_job(FAILED_JOB, _pod("Traceback: out of memory"))

    assert outcome.problem == "Job failed: BackoffLimitExceeded (Traceback: out of memory)"
