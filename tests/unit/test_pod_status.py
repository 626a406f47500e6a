"""The pod status the runner reports, as a kubelet would (pure)."""

from __future__ import annotations

from devenv.pod_status import ContainerState, Terminated, pod_phase, pod_status

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
DONE = Terminated(exit_code=0, message='{"ok":true}', started_at=T0, finished_at=T1)
FAILED = Terminated(exit_code=3, message="no data", started_at=T0, finished_at=T1)


def test_phases() -> None:
    assert pod_phase([ContainerState("c", "i")]) == "Pending"
    assert pod_phase([ContainerState("c", "i", running_since=T0)]) == "Running"
    assert pod_phase([ContainerState("c", "i", terminated=DONE, final=True)]) == "Succeeded"
    assert pod_phase([ContainerState("c", "i", terminated=FAILED, final=True)]) == "Failed"
    # Backing off before a restart is still Running, as the kubelet reports it.
    assert pod_phase([ContainerState("c", "i", last_terminated=FAILED, restart_count=1)]) == (
        "Running"
    )


def test_a_completed_container_carries_exit_code_and_message() -> None:
    status = pod_status(
        [ContainerState("train", "img", terminated=FAILED, final=True)], [], "127.0.0.1", T0, T1
    )

    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        3,
        "Error",
        "no data",
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")


def test_ready_needs_every_container_ready_and_keeps_transition_times() -> None:
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}
    ready_before = {"type": "Ready", "status": "True", "lastTransitionTime": T0}
    running = ContainerState("a", "i", running_since=T0, ready=True)
    starting = ContainerState("b", "i", running_since=T0, ready=False)

    both = pod_status([running, running], [scheduled, ready_before], "127.0.0.1", T0, T1)
    one = pod_status([running, starting], [scheduled, ready_before], "127.0.0.1", T0, T1)

    by_type = {c["type"]: c for c in both["conditions"]}
    assert by_type["PodScheduled"] == scheduled
    assert (by_type["Ready"]["status"], by_type["Ready"]["lastTransitionTime"]) == ("True", T0)
    unready = next(c for c in one["conditions"] if c["type"] == "Ready")
    assert (unready["status"], unready["lastTransitionTime"]) == ("False", T1)
    assert "[b]" in unready["message"]
