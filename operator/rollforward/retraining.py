"""Retraining decisions: triggers, limits, the Job, its result and the acceptance gate. Pure.

Exactly one Job per trigger: the trigger id derives from what caused it (the drift episode's
start, the annotation's value, the schedule slot), the Job name from the id and attempt, and
both are recomputed identically after a crash, so a retry finds the Job it already made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from rollforward.api import (
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentStatus,
    RetrainingSpec,
    RetrainingTrigger,
    TrainingData,
    duration_seconds,
)
from rollforward.api import annotations as steering
from rollforward.api.status import HISTORY_LIMIT
from rollforward.bentostore.decisions import gate_refusal
from rollforward.bentostore.location import log_env
from rollforward.builders import child_metadata, with_desired_hash
from rollforward.cron import last_fire_time
from rollforward.naming import (
    COMPONENT_RETRAINING,
    LABEL_TRIGGER,
    job_name,
    owned_labels,
)
from rollforward.observed import Manifest
from rollforward.pod_security import with_restricted_defaults
from rollforward.serving.contract import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_DRIFT_BEGAN_AT,
    ENV_MODEL,
    ENV_TERMINATION_MESSAGE_PATH,
    ENV_VERSION,
    RetrainingResult,
)
from rollforward.serving.objectstore.client import Answer
from rollforward.variants import champion_version

ENV_TRIGGER_ID = "ROLLFORWARD_TRIGGER_ID"
ENV_DRIFT_REPORT = "ROLLFORWARD_DRIFT_REPORT"
BACKOFF_BASE = timedelta(seconds=30)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Trigger:
    id: str
    kind: RetrainingTrigger
    request: str | None = None
    """The handledRequests key to record when this trigger starts (one-shot requests)."""


def trigger_id(cause: str) -> str:
    return hashlib.sha256(cause.encode()).hexdigest()[:10]


def pending_trigger(deployment: ModelDeployment, now: datetime) -> Trigger | None:
    """The trigger that asks for a retraining now, if any (limits are checked separately)."""
    spec, status = deployment.spec.retraining, deployment.status
    if spec is None:
        return None
    value = deployment.metadata.annotations.get(steering.RETRAIN)
    if value:
        key = steering.request_key(steering.RETRAIN, value)
        if key not in status.handled_requests:
            return Trigger(trigger_id(f"manual:{value}"), RetrainingTrigger.MANUAL, key)
    if spec.trigger is RetrainingTrigger.ON_DRIFT and status.drift_tracking.drifted:
        since = status.drift_tracking.drifted_since
        episode = since.isoformat() if since else "unknown"
        found = Trigger(trigger_id(f"drift:{episode}"), RetrainingTrigger.ON_DRIFT)
        return None if _already_ran(status, found.id) else found
    if spec.trigger is RetrainingTrigger.SCHEDULE and spec.schedule:
        slot = last_fire_time(spec.schedule, now)
        if slot is not None and (status.retrain_starts == [] or slot > max(status.retrain_starts)):
            found = Trigger(trigger_id(f"schedule:{slot.isoformat()}"), RetrainingTrigger.SCHEDULE)
            return None if _already_ran(status, found.id) else found
    return None


def _already_ran(status: ModelDeploymentStatus, trigger: str) -> bool:
    if status.retraining is not None and status.retraining.trigger_id == trigger:
        return True
    return any(entry.trigger_id == trigger for entry in status.history)


def limit_reason(spec: RetrainingSpec, status: ModelDeploymentStatus, now: datetime) -> str | None:
    """Why a trigger may not start a Job now (cooldown or daily maximum), or None."""
    recent = [start for start in status.retrain_starts if now - start < DAY]
    if len(recent) >= spec.max_per_day:
        return f"{len(recent)} retraining Jobs in the last 24h (maxPerDay {spec.max_per_day})"
    if recent:
        wait = timedelta(seconds=duration_seconds(spec.cooldown)) - (now - max(recent))
        if wait > timedelta(0):
            seconds = int(wait.total_seconds())
            return f"cooldown {spec.cooldown}: next retraining possible in {seconds}s"
    return None


def recent_starts(status: ModelDeploymentStatus, now: datetime) -> list[datetime]:
    return [start for start in status.retrain_starts if now - start < DAY]


def backoff(attempt: int) -> timedelta:
    factor: int = 2 ** (attempt - 1)
    return BACKOFF_BASE * factor


def _job_env(deployment: ModelDeployment, trigger: str, drift_json: str) -> list[Manifest]:
    """What the retraining entrypoint is told (rollforward.serving.contract)."""
    version = champion_version(deployment.spec, deployment.status)
    env: list[Manifest] = [
        {"name": ENV_MODEL, "value": deployment.spec.model},
        {"name": ENV_VERSION, "value": version},
        {"name": ENV_TRIGGER_ID, "value": trigger},
        {"name": ENV_DRIFT_REPORT, "value": drift_json},
        {"name": ENV_TERMINATION_MESSAGE_PATH, "value": DEFAULT_TERMINATION_MESSAGE_PATH},
        # The log the ModelDeployment's bentos write (`--source logs` reads it), not another's.
        log_env(deployment),
    ]
    tracking = deployment.status.drift_tracking
    if tracking.drifted and tracking.drift_began_at is not None:
        # A fact, not a command: the entrypoint decides whether its window starts there.
        env.append({"name": ENV_DRIFT_BEGAN_AT, "value": tracking.drift_began_at.isoformat()})
    return env


def retraining_job(
    deployment: ModelDeployment, trigger: str, attempt: int, drift_json: str
) -> Manifest:
    """The Job of one attempt, from spec.retraining.template."""
    spec = deployment.spec.retraining
    assert spec is not None
    template: dict[str, Any] = spec.template.model_dump(mode="json", exclude_none=True)
    name = job_name(deployment.metadata.name, trigger, attempt)
    labels = {
        **owned_labels(deployment.metadata.name, COMPONENT_RETRAINING),
        LABEL_TRIGGER: trigger,
    }
    metadata = template.get("metadata") or {}
    pod_spec = dict(template["spec"])
    env = _job_env(deployment, trigger, drift_json)
    ours = {e["name"] for e in env}
    pod_spec["containers"] = [
        {
            **container,
            # The operator's values win (as the last duplicate would), without the duplicate.
            "env": [*(e for e in container.get("env", []) if e["name"] not in ours), *env],
            "terminationMessagePath": DEFAULT_TERMINATION_MESSAGE_PATH,
            "terminationMessagePolicy": "File",
        }
        for container in pod_spec["containers"]
    ]
    pod_spec["restartPolicy"] = "Never"
    manifest: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_metadata(deployment, name, labels, {}),
        "spec": {
            # Retries are ours (a new Job per attempt, with backoff), so a Job runs one pod.
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(duration_seconds(spec.timeout)),
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "labels": {**metadata.get("labels", {}), **labels},
                    "annotations": metadata.get("annotations", {}),
                },
                "spec": with_restricted_defaults(pod_spec),
            },
        },
    }
    return with_desired_hash(manifest)


@dataclass(frozen=True)
class JobOutcome:
    """What the Job of the current attempt says."""

    finished: bool
    succeeded: bool = False
    result: RetrainingResult | None = None
    problem: str = ""


def read_job(job: Manifest | None, pod: Manifest | None) -> JobOutcome:
    """Read a Job and its pod's termination message. Pure."""
    if job is None:
        return JobOutcome(finished=False)
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    if "Failed" in conditions:
        failed = conditions["Failed"]
        detail = failed.get("message") or failed.get("reason") or "failed"
        return JobOutcome(finished=True, problem=f"Job failed: {detail}{_message_hint(pod)}")
    if "Complete" not in conditions and not status.get("succeeded"):
        return JobOutcome(finished=False)
    message = termination_message(pod)
    if not message:
        return JobOutcome(finished=True, problem="Job succeeded but left no termination message")
    try:
        result = RetrainingResult.from_termination_message(message)
    except (ValidationError, ValueError) as error:
        first = str(error).splitlines()[0][:200]
        return JobOutcome(finished=True, problem=f"malformed retraining result: {first}")
    return JobOutcome(finished=True, succeeded=True, result=result)


def _message_hint(pod: Manifest | None) -> str:
    """What the failed pod said: the entrypoint's reasons when it wrote a RetrainingResult
    (e.g. too few labelled records in the prediction log), else its raw message."""
    message = termination_message(pod)
    if not message:
        return ""
    try:
        reasons = RetrainingResult.from_termination_message(message).reasons
    except (ValidationError, ValueError):
        reasons = []
    return f" ({'; '.join(reasons)[:600] if reasons else message[:200]})"


def termination_message(pod: Manifest | None) -> str:
    if pod is None:
        return ""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("message"):
            return str(terminated["message"])
    return ""


def gate(
    deployment: ModelDeployment,
    result: RetrainingResult,
    stored_bentos: Mapping[str, Answer] | None = None,
) -> list[str]:
    """Why the candidate must not serve, per spec.retraining.acceptance and the bento store
    (None: no store configured); empty if it may."""
    spec = deployment.spec.retraining
    assert spec is not None
    acceptance = spec.acceptance
    reasons = (
        [f"the retraining entrypoint rejected it: {r}" for r in result.reasons]
        if not result.accepted
        else []
    )
    if not result.version:
        reasons.append("the result names no version")
    if result.version in deployment.status.failed_versions:
        reasons.append(f"{result.version} was rolled back or rejected before")
    if result.version == champion_version(deployment.spec, deployment.status):
        reasons.append(f"{result.version} is the serving champion already")
    refusal = gate_refusal(result.version, stored_bentos) if result.version else None
    if refusal:
        reasons.append(refusal)
    metrics = result.metrics
    if metrics is None:
        return [*reasons, "the result reports no metrics"]
    holdout_auc = metrics.holdout.auc
    if holdout_auc is None or holdout_auc < acceptance.min_auc:
        reasons.append(f"holdout AUC {holdout_auc} < minAuc {acceptance.min_auc}")
    recent_auc = metrics.recent.auc
    if acceptance.min_recent_auc is not None and (
        recent_auc is None or recent_auc < acceptance.min_recent_auc
    ):
        reasons.append(f"recent AUC {recent_auc} < minRecentAuc {acceptance.min_recent_auc}")
    champion = metrics.champion_recent
    comparable = champion is not None and champion.auc is not None
    if acceptance.not_worse_than_champion and comparable:
        assert champion is not None and champion.auc is not None
        if recent_auc is None or recent_auc < champion.auc - acceptance.tolerance:
            reasons.append(
                f"recent AUC {recent_auc} is worse than the champion's {champion.auc:.3f} "
                f"by more than {acceptance.tolerance}"
            )
    return reasons


def result_metrics(result: RetrainingResult) -> dict[str, float]:
    metrics = result.metrics
    if metrics is None:
        return {}
    values = {
        "holdoutAuc": metrics.holdout.auc,
        "holdoutRecall": metrics.holdout.recall,
        "recentAuc": metrics.recent.auc,
        "recentRecall": metrics.recent.recall,
        "championRecentAuc": metrics.champion_recent.auc if metrics.champion_recent else None,
    }
    return {k: round(v, 4) for k, v in values.items() if v is not None}


def training_data(result: RetrainingResult) -> TrainingData | None:
    """The data window a Job reported, as status records it. Pure."""
    window = result.data_window
    if window is None:
        return None
    return TrainingData(
        source=window.source,
        start=window.start,
        end=window.end,
        predictions=window.predictions,
        labelled=window.labelled,
        drift_began_at=window.drift_began_at,
    )


def with_history(status: ModelDeploymentStatus, entry: HistoryEntry) -> list[HistoryEntry]:
    """Append or replace (by version and trigger) an entry, keeping the newest HISTORY_LIMIT."""
    kept = [
        e for e in status.history if (e.version, e.trigger_id) != (entry.version, entry.trigger_id)
    ]
    return [*kept, entry][-HISTORY_LIMIT:]


def drift_summary(status: ModelDeploymentStatus) -> str:
    """The drift report the Job receives, compact."""
    if status.drift is None:
        return "{}"
    return json.dumps(status.drift.model_dump(by_alias=True, mode="json", exclude_none=True))[:2000]
