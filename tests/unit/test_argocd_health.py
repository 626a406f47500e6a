"""The Argo CD health check and resource actions of ModelDeployment, run in real Lua.

Argo CD runs customizations in gopher-lua (Lua 5.1), with the script's `obj` as a global and
its return value as the result. lupa embeds the real C Lua; the tests run Lua 5.1 and 5.4.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.cluster import REPO_ROOT

CUSTOMIZATION = REPO_ROOT / "gitops/argocd/resource_customizations/rollforward.io/ModelDeployment"
HEALTH = CUSTOMIZATION / "health.lua"
ACTIONS = CUSTOMIZATION / "actions"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

RunLua = Callable[[Path, Mapping[str, Any]], dict[str, Any]]


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def _from_lua(value: Any) -> Any:
    if type(value).__name__ == "_LuaTable":
        items = dict(value.items())
        if items and all(isinstance(k, int) for k in items):
            return [_from_lua(items[i]) for i in sorted(items)]
        return {k: _from_lua(v) for k, v in items.items()}
    return value


@pytest.fixture(params=["lua51", "lua54"])
def run_lua(request: pytest.FixtureRequest) -> RunLua:
    """Run a customization script on `obj` the way Argo CD does; return its result."""
    lupa_module = importlib.import_module(f"lupa.{request.param}")

    def run(script: Path, obj: Mapping[str, Any]) -> dict[str, Any]:
        runtime = lupa_module.LuaRuntime(unpack_returned_tuples=False)
        runtime.globals().obj = _to_lua(runtime, obj)
        result: dict[str, Any] = _from_lua(runtime.execute(script.read_text()))
        return result

    return run


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def model_deployment(
    *,
    generation: int = 3,
    observed: int | None = 3,
    phase: str | None = "Stable",
    conditions: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    with_status: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "rollforward.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "upsell", "namespace": "ml", "generation": generation},
        "spec": {"model": "upsell"},
    }
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    if with_status:
        status: dict[str, Any] = {"conditions": conditions or []}
        if observed is not None:
            status["observedGeneration"] = observed
        if phase is not None:
            status["phase"] = phase
        body["status"] = status
    return body


STABLE = [
    condition("Ready", "True", "Reconciled", "2 variants serve"),
    condition("Progressing", "False", "Reconciled"),
    condition("Drifted", "False", "NoDrift"),
]

HEALTH_CASES = {
    "stable is Healthy": (model_deployment(conditions=STABLE), "Healthy", "2 variants serve"),
    "drifted but serving is Healthy, saying so": (
        model_deployment(
            phase="Drifted",
            conditions=[
                condition("Ready", "True", "Reconciled"),
                condition("Drifted", "True", "DriftDetected", "chiSquare p=0.0001"),
            ],
        ),
        "Healthy",
        "drift detected: chiSquare p=0.0001",
    ),
    "no status yet is Progressing": (
        model_deployment(with_status=False),
        "Progressing",
        "Waiting for the operator",
    ),
    "an old observedGeneration is Progressing, even when Ready": (
        model_deployment(generation=4, observed=3, conditions=STABLE),
        "Progressing",
        "generation 4",
    ),
    "no observedGeneration is Progressing": (
        model_deployment(observed=None, conditions=STABLE),
        "Progressing",
        "generation 3",
    ),
    "children rolling is Progressing": (
        model_deployment(
            phase="Pending",
            conditions=[
                condition("Ready", "False", "ChildrenUpdating", "champion 0/2 available"),
                condition("Progressing", "True", "ChildrenUpdating", "champion 0/2 available"),
            ],
        ),
        "Progressing",
        "champion 0/2 available",
    ),
    "a canary under way is Progressing": (
        model_deployment(
            phase="Canary",
            conditions=[
                condition("Ready", "True", "Reconciled"),
                condition("Progressing", "True", "CanaryInProgress", "step 1/2: 10%"),
            ],
        ),
        "Progressing",
        "step 1/2: 10%",
    ),
    "Ready Unknown is Progressing": (
        model_deployment(conditions=[condition("Ready", "Unknown", "", "")]),
        "Progressing",
        "Waiting for the Ready condition",
    ),
    "a variant down is Degraded": (
        model_deployment(
            phase="Degraded",
            conditions=[
                condition(
                    "Ready", "False", "VariantUnavailable", "deployment upsell-champion: 0/2"
                ),
                condition("Progressing", "False", "VariantUnavailable"),
            ],
        ),
        "Degraded",
        "deployment upsell-champion: 0/2",
    ),
    "an invalid spec is Degraded": (
        model_deployment(
            phase="Degraded",
            conditions=[condition("Ready", "False", "InvalidSpec", "weights must sum to 100")],
        ),
        "Degraded",
        "weights must sum to 100",
    ),
    "the paused annotation is Suspended": (
        model_deployment(
            phase="Canary",
            annotations={"rollforward.io/paused": "true"},
            conditions=[condition("Ready", "True"), condition("Progressing", "True")],
        ),
        "Suspended",
        "Paused",
    ),
    "phase Paused is Suspended": (
        model_deployment(
            phase="Paused",
            conditions=[
                condition("Ready", "True"),
                condition("Progressing", "False", "Paused", "analysis inconclusive: holding"),
            ],
        ),
        "Suspended",
        "analysis inconclusive: holding",
    ),
    "awaiting approval is Suspended": (
        model_deployment(
            phase="AwaitingApproval",
            conditions=[condition("Ready", "True"), condition("Progressing", "False")],
        ),
        "Suspended",
        "rollforward.io/approve",
    ),
    "paused false is not Suspended": (
        model_deployment(conditions=STABLE, annotations={"rollforward.io/paused": "false"}),
        "Healthy",
        "2 variants serve",
    ),
}


@pytest.mark.parametrize("case", HEALTH_CASES, ids=list(HEALTH_CASES))
def test_health(run_lua: RunLua, case: str) -> None:
    obj, status, message = HEALTH_CASES[case]
    health = run_lua(HEALTH, obj)
    assert health["status"] == status
    assert message in health["message"]


def test_every_health_status_argo_knows_is_reachable() -> None:
    reached = {status for _, status, _ in HEALTH_CASES.values()}
    assert reached == {"Healthy", "Progressing", "Degraded", "Suspended"}


def enabled_actions(run_lua: RunLua, obj: Mapping[str, Any]) -> set[str]:
    actions = run_lua(ACTIONS / "discovery.lua", obj)
    assert set(actions) == {"approve", "rollback", "pause", "resume", "retrain"}
    return {name for name, flags in actions.items() if not flags["disabled"]}


def test_discovery_offers_what_the_phase_allows(run_lua: RunLua) -> None:
    stable = model_deployment(conditions=STABLE)
    assert enabled_actions(run_lua, stable) == {"pause", "retrain"}
    waiting = model_deployment(phase="AwaitingApproval")
    assert enabled_actions(run_lua, waiting) == {"approve", "rollback", "pause", "retrain"}
    canary_paused = model_deployment(phase="Canary", annotations={"rollforward.io/paused": "true"})
    assert enabled_actions(run_lua, canary_paused) == {"rollback", "resume", "retrain"}
    retraining = model_deployment(phase="Retraining", with_status=True)
    assert enabled_actions(run_lua, retraining) == {"pause"}
    assert enabled_actions(run_lua, model_deployment(with_status=False)) == {"pause", "retrain"}


@pytest.mark.parametrize("action", ["approve", "rollback", "retrain"])
def test_one_shot_actions_set_their_annotation_to_a_timestamp(run_lua: RunLua, action: str) -> None:
    before = model_deployment(phase="AwaitingApproval", annotations={"team": "ml"})
    after = run_lua(ACTIONS / action / "action.lua", before)
    annotations = after["metadata"]["annotations"]
    assert TIMESTAMP.match(annotations[f"rollforward.io/{action}"])
    assert annotations["team"] == "ml"
    assert after["spec"] == before["spec"], "an action never touches spec"


def test_one_shot_action_on_an_object_without_annotations(run_lua: RunLua) -> None:
    after = run_lua(ACTIONS / "approve" / "action.lua", model_deployment(phase="AwaitingApproval"))
    assert TIMESTAMP.match(after["metadata"]["annotations"]["rollforward.io/approve"])


def test_pause_then_resume(run_lua: RunLua) -> None:
    paused = run_lua(ACTIONS / "pause" / "action.lua", model_deployment(phase="Canary"))
    assert paused["metadata"]["annotations"] == {"rollforward.io/paused": "true"}
    assert run_lua(HEALTH, paused)["status"] == "Suspended"
    resumed = run_lua(ACTIONS / "resume" / "action.lua", paused)
    assert resumed["metadata"]["annotations"] == {"rollforward.io/paused": "false"}
    assert enabled_actions(run_lua, resumed) >= {"pause"}
    assert "resume" not in enabled_actions(run_lua, resumed)


def test_argocd_cm_patch_embeds_the_lua_files_unchanged() -> None:
    patch = yaml.safe_load((REPO_ROOT / "gitops/argocd/argocd-cm-rollforward.yaml").read_text())
    data = patch["data"]
    assert data["resource.customizations.health.rollforward.io_ModelDeployment"] == (
        HEALTH.read_text()
    )
    actions = yaml.safe_load(data["resource.customizations.actions.rollforward.io_ModelDeployment"])
    assert actions["discovery.lua"] == (ACTIONS / "discovery.lua").read_text()
    embedded = {d["name"]: d["action.lua"] for d in actions["definitions"]}
    on_disk = {p.parent.name: p.read_text() for p in ACTIONS.glob("*/action.lua")}
    assert embedded == on_disk, "run `make gitops-argocd`"
