"""The status a kubelet reports for a pod, from the states of its containers: pure.

Kept apart from the runner's I/O so the phase and condition rules can be read, and tested, on
their own. They follow the kubelet's: a pod is Running while any container runs or will be
restarted, Succeeded when every container exited 0 for good, Failed when they all exited for
good and one did not exit 0, and Ready only while Running with every container ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Manifest = dict[str, Any]
# Conditions owned by the pod's kubelet; the rest (PodScheduled, readiness gates) stay as set.
KUBELET_CONDITIONS = ("Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers")


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 with seconds, as Kubernetes writes `Time` fields."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    message: str
    started_at: str
    finished_at: str

    def state(self) -> Manifest:
        terminated: Manifest = {
            "exitCode": self.exit_code,
            "reason": "Completed" if self.exit_code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            terminated["message"] = self.message
        return {"terminated": terminated}


@dataclass(frozen=True)
class ContainerState:
    """What the runner knows about one container at this moment."""

    name: str
    image: str
    restart_count: int = 0
    # Exactly one of these describes the current state; none means "waiting to start".
    running_since: str | None = None
    terminated: Terminated | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    ready: bool = False
    # The previous run, after a restart.
    last_terminated: Terminated | None = None
    # True when a terminated container will not be started again (restartPolicy).
    final: bool = False
    container_id: str = ""

    def status(self) -> Manifest:
        if self.running_since is not None:
            state: Manifest = {"running": {"startedAt": self.running_since}}
        elif self.terminated is not None:
            state = self.terminated.state()
        else:
            waiting: Manifest = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        status: Manifest = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready and self.running_since is not None,
            "restartCount": self.restart_count,
            "started": self.running_since is not None,
            "state": state,
            "lastState": self.last_terminated.state() if self.last_terminated else {},
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def pod_phase(containers: Sequence[ContainerState]) -> str:
    if containers and all(c.terminated is not None and c.final for c in containers):
        failed = any(c.terminated is not None and c.terminated.exit_code != 0 for c in containers)
        return "Failed" if failed else "Succeeded"
    # A container that has run once keeps the pod Running while it backs off to restart.
    if any(c.running_since or c.terminated or c.last_terminated for c in containers):
        return "Running"
    return "Pending"


def pod_status(
    containers: Sequence[ContainerState],
    previous_conditions: Sequence[Mapping[str, Any]],
    pod_ip: str,
    start_time: str,
    now: str,
) -> Manifest:
    """The pod's `status` (phase, conditions, container statuses, IPs), keeping each condition's
    lastTransitionTime while its status does not change."""
    phase = pod_phase(containers)
    all_ready = phase == "Running" and all(
        c.ready and c.running_since is not None for c in containers
    )
    not_ready = sorted(c.name for c in containers if not (c.ready and c.running_since))
    reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
    message = "" if all_ready else f"containers with unready status: [{' '.join(not_ready)}]"
    ours = {
        "PodReadyToStartContainers": ("True", "", ""),
        "Initialized": ("True", "", ""),
        "ContainersReady": ("True", "", "") if all_ready else ("False", reason, message),
        "Ready": ("True", "", "") if all_ready else ("False", reason, message),
    }
    kept = [c for c in previous_conditions if c.get("type") not in KUBELET_CONDITIONS]
    before = {c.get("type"): c for c in previous_conditions}
    conditions = [dict(c) for c in kept]
    for kind, (status, why, text) in ours.items():
        old = before.get(kind)
        changed = old is None or old.get("status") != status
        condition: Manifest = {
            "type": kind,
            "status": status,
            "lastTransitionTime": now if changed or old is None else old.get("lastTransitionTime"),
        }
        if why:
            condition["reason"] = why
        if text:
            condition["message"] = text
        conditions.append(condition)
    return {
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": [c.status() for c in containers],
        "hostIP": pod_ip,
        "hostIPs": [{"ip": pod_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
    }
