"""The operator and `kubectl rollforward` read the pause annotation the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fixtures.decision_inputs import T0, deployment
from rollforward.api import DriftTracking, ModelDeploymentStatus
from rollforward.api import annotations as steering
from rollforward.kubectl.actions import Action, plan_action
from rollforward.kubectl.actions import is_paused as cli_is_paused
from rollforward.lifecycle import LifecycleInputs, advance
from rollforward.lifecycle import is_paused as operator_is_paused

DRIFTED = ModelDeploymentStatus(
    drift_tracking=DriftTracking(drifted=True, breach_streak=3, checks=3, drifted_since=T0)
)


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "false", "False", "", "yes"])
def test_the_cli_and_the_operator_agree(value: str) -> None:
    md = deployment(annotations={steering.PAUSED: value})
    assert cli_is_paused(md) == operator_is_paused(md)


def test_capitalised_true_pauses_and_the_cli_says_so() -> None:
    md = deployment(DRIFTED, annotations={steering.PAUSED: "True"})
    # The operator starts no retraining on a drifted, paused resource ...
    assert advance(md, LifecycleInputs(), T0 + timedelta(minutes=1)).jobs == []
    # ... and the CLI knows it is paused: resume has something to do, pause has not.
    assert plan_action(Action.PAUSE, md, "r").nothing_to_do == "already paused"
    assert not plan_action(Action.RESUME, md, "r").nothing_to_do
