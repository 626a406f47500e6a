"""The steering actions as pure plans, the colour decision, and the version-mismatch rule."""

from __future__ import annotations

import io
from typing import Any

import pytest
import yaml

from rollforward.api import annotations as steering
from rollforward.api import parse_model_deployment
from rollforward.kubectl.actions import Action, plan_action
from rollforward.kubectl.client import CliError, parse, version_problem
from rollforward.kubectl.commands import describe_patch, request_id
from rollforward.kubectl.style import color_wanted
from unit.test_cli_render import phase_body


def model(phase: str, **annotations: str) -> Any:
    body = phase_body(phase)
    body["metadata"]["annotations"] = {**body["metadata"]["annotations"], **annotations}
    return parse_model_deployment(body)


def test_approve_writes_the_one_shot_annotation_when_awaiting_approval() -> None:
    plan = plan_action(Action.APPROVE, model("AwaitingApproval"), "r1")
    assert plan.patch == {steering.APPROVE: "r1"} and not plan.refused
    assert "promote upsell:v2 to champion" in plan.will_happen


@pytest.mark.parametrize("phase", ["Stable", "Canary", "Drifted"])
def test_approve_is_refused_when_nothing_awaits_approval(phase: str) -> None:
    assert "nothing awaits approval" in plan_action(Action.APPROVE, model(phase), "r").refused


@pytest.mark.parametrize("phase", ["Canary", "AwaitingApproval", "Paused", "Promoting"])
def test_rollback_during_a_canary(phase: str) -> None:
    plan = plan_action(Action.ROLLBACK, model(phase), "r2")
    assert plan.patch == {steering.ROLLBACK: "r2"} and not plan.refused
    assert "never deploy upsell:v2 again" in plan.will_happen


def test_rollback_is_refused_without_a_canary() -> None:
    assert "no canary" in plan_action(Action.ROLLBACK, model("Stable"), "r").refused


def test_pause_and_resume_are_level_and_idempotent() -> None:
    assert plan_action(Action.PAUSE, model("Stable"), "x").patch == {steering.PAUSED: "true"}
    paused = model("Stable", **{steering.PAUSED: "true"})
    assert plan_action(Action.PAUSE, paused, "x").nothing_to_do == "already paused"
    assert plan_action(Action.RESUME, paused, "x").patch == {steering.PAUSED: None}
    assert plan_action(Action.RESUME, model("Stable"), "x").nothing_to_do == "not paused"


def test_retrain() -> None:
    plan = plan_action(Action.RETRAIN, model("Drifted"), "r3")
    assert plan.patch == {steering.RETRAIN: "r3"} and not plan.refused
    assert "cooldown 1h" in plan.will_happen
    assert "still running" in plan_action(Action.RETRAIN, model("Retraining"), "r").refused
    body = phase_body("Stable")
    del body["spec"]["retraining"]
    refused = plan_action(Action.RETRAIN, parse_model_deployment(body), "r").refused
    assert "spec.retraining is not set" in refused
    paused = plan_action(Action.RETRAIN, model("Stable", **{steering.PAUSED: "true"}), "r")
    assert "after `resume`" in paused.will_happen


def test_request_ids_are_unique_per_microsecond_and_patches_read_well() -> None:
    from datetime import UTC, datetime

    assert request_id(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"
    assert describe_patch({"a": "1", "b": None}) == "a=1, b- (removed)"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert color_wanted("auto", _Stream(True), {}) is True
    assert color_wanted("auto", _Stream(False), {}) is False
    assert color_wanted("auto", _Stream(True), {"NO_COLOR": "1"}) is False
    assert color_wanted("always", _Stream(False), {"NO_COLOR": "1"}) is True
    assert color_wanted("never", _Stream(True), {}) is False


def test_version_problem() -> None:
    assert version_problem(["v1alpha1"]) == ""
    assert version_problem(["v1beta1", "v1alpha1"]) == ""
    assert "not installed" in version_problem([])
    mismatch = version_problem(["v1beta1"])
    assert mismatch.startswith("operator version mismatch") and "v1beta1" in mismatch


def test_a_status_this_cli_cannot_read_is_a_version_mismatch() -> None:
    body = phase_body("Stable")
    body["status"]["phase"] = "Hibernating"
    with pytest.raises(CliError) as caught:
        parse(body)
    assert caught.value.message.startswith("operator version mismatch")
    assert "status.phase" in caught.value.message


def test_phases_fixture_is_yaml_the_cluster_accepts() -> None:
    assert yaml.safe_dump(phase_body("Canary"))  # plain data, no Python objects


def test_run_turns_any_failure_into_one_line_and_an_exit_code() -> None:
    import argparse

    from rollforward.kubectl.commands import run

    def failing(error: BaseException) -> argparse.Namespace:
        def handler(_args: argparse.Namespace, _out: Any) -> int:
            raise error

        return argparse.Namespace(run_command=handler)

    cases = [
        (CliError("nope", 2), 2, "error: nope\n"),
        (RuntimeError("boom"), 1, "error: unexpected RuntimeError: boom (please report it)\n"),
        (BrokenPipeError(), 0, ""),
        (KeyboardInterrupt(), 130, ""),
    ]
    for error, code, message in cases:
        out, err = io.StringIO(), io.StringIO()
        assert run(failing(error), out, err) == code
        assert err.getvalue() == message
