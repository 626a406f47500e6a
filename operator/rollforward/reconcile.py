"""One reconcile of one ModelDeployment: gather, decide, apply.

Gather reads the children; decide (pure) turns resource + children + now into a plan; apply
writes children first and status last, once, and only what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rollforward.api import (
    ConditionType,
    ModelDeploymentStatus,
    Reason,
    parse_model_deployment,
    validation_messages,
)
from rollforward.conditions import set_condition
from rollforward.kube import KubeAdapter
from rollforward.serving_plan import MANAGED_KINDS, Event, plan_serving
from rollforward.settings import OperatorSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ReconcileResult:
    applied: int
    deleted: int
    status_written: bool


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `old` into `new` at the top level (null removes a key)."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


def dump_status(status: ModelDeploymentStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def reconcile(
    body: dict[str, Any], kube: KubeAdapter, settings: OperatorSettings, now: Clock
) -> ReconcileResult:
    """Bring one ModelDeployment's children and status in line with its spec."""
    namespace = body["metadata"].get("namespace", "default")
    name = body["metadata"]["name"]
    try:
        deployment = parse_model_deployment(body)
    except ValidationError as error:
        return _report_invalid(body, error, kube, now())

    observed = kube.observe(deployment, MANAGED_KINDS)
    plan = plan_serving(deployment, observed, settings, now())

    for manifest in plan.apply:
        kube.apply(manifest)
    for kind, child in plan.delete:
        kube.delete(namespace, kind, child)

    old_status = body.get("status") or {}
    patch = status_patch(old_status, dump_status(plan.status))
    if patch:
        kube.patch_status(namespace, name, patch)
    for event in plan.events:
        kube.post_event(deployment, event)
    return ReconcileResult(len(plan.apply), len(plan.delete), bool(patch))


def _report_invalid(
    body: dict[str, Any], error: ValidationError, kube: KubeAdapter, now: datetime
) -> ReconcileResult:
    """The API server validates first, so this is rare (an older CRD, say). Say which field."""
    message = "; ".join(validation_messages(error))[:1024]
    raw_status = body.get("status") or {}
    status = ModelDeploymentStatus.model_validate(raw_status)
    conditions = set_condition(
        status.conditions,
        ConditionType.READY,
        "False",
        Reason.INVALID_SPEC,
        message,
        body["metadata"].get("generation", 0),
        now,
    )
    new = dump_status(status.model_copy(update={"conditions": conditions}))
    patch = status_patch(raw_status, new)
    if patch:
        kube.patch_status(
            body["metadata"].get("namespace", "default"), body["metadata"]["name"], patch
        )
        log.warning("invalid ModelDeployment %s: %s", body["metadata"]["name"], message)
    return ReconcileResult(0, 0, bool(patch))


__all__ = ["Clock", "Event", "ReconcileResult", "reconcile", "status_patch"]
