"""When a running canary is looked at, its windows, its blast radius, and the requeue."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

from fixtures.decision_inputs import T0, deployment
from rollforward.api import BlastRadius, ModelDeployment, RolloutStatus
from rollforward.handlers import OperatorContext
from rollforward.kube import KubeAdapter
from rollforward.looks import (
    canary_window_seconds,
    counted,
    look_tick,
    next_look_in,
    requeue_after,
    step_window_seconds,
)
from rollforward.metrics import OperatorMetrics
from rollforward.prometheus import MetricsSource
from rollforward.settings import OperatorSettings


def canary(interval: str = "5s", **rollout: Any) -> ModelDeployment:
    def mutate(spec: dict[str, Any]) -> None:
        spec["rollout"]["analysis"]["interval"] = interval

    md = deployment(mutate=mutate)
    fields: dict[str, Any] = {
        "candidate_version": "upsell:v2",
        "trigger_id": "t1",
        "step_started_at": T0,
        "spec_hash": "h",
        "candidate_ready": True,
        **rollout,
    }
    status = md.status.model_copy(update={"rollout": RolloutStatus(**fields)})
    return md.model_copy(update={"status": status})


class TestCadence:
    def test_looks_are_aligned_to_the_interval(self) -> None:
        md = canary("5s")
        assert look_tick(md, T0 + timedelta(seconds=7.3)) == T0 + timedelta(seconds=5)
        assert next_look_in(md, T0 + timedelta(seconds=7)) == 3.25

    def test_a_running_canary_is_requeued_at_its_interval(self) -> None:
        assert requeue_after(canary("2s"), T0 + timedelta(seconds=1)) == 1.25

    def test_no_requeue_without_a_canary_or_while_it_is_held(self) -> None:
        assert requeue_after(deployment(), T0) is None
        assert requeue_after(canary(held_reason="paused by rollforward.io/paused"), T0) is None
        assert requeue_after(canary(awaiting_approval=True), T0) is None


class TestWindows:
    def test_the_step_window_reaches_back_to_the_step_start(self) -> None:
        md = canary(step_started_at=T0 - timedelta(seconds=12.5))
        assert step_window_seconds(md.status.rollout, T0) == 13

    def test_the_canary_window_reaches_back_to_when_the_candidate_started_serving(self) -> None:
        md = canary(serving_since=T0 - timedelta(seconds=90))
        assert canary_window_seconds(md.status.rollout, T0) == 90

    def test_windows_are_at_least_a_second(self) -> None:
        md = canary(step_started_at=T0 + timedelta(seconds=1))
        assert step_window_seconds(md.status.rollout, T0) == 1


class TestBlastRadius:
    def test_the_first_failure_is_stamped_once(self) -> None:
        first = counted(BlastRadius(), 40, 0, T0)
        assert first.first_failure_at is None
        second = counted(first, 60, 3, T0 + timedelta(seconds=2))
        third = counted(second, 80, 7, T0 + timedelta(seconds=4))
        assert (third.requests, third.failed) == (80, 7)
        assert third.first_failure_at == T0 + timedelta(seconds=2)

    def test_a_lower_count_never_undoes_what_was_seen(self) -> None:
        seen = counted(BlastRadius(), 100, 9, T0)
        assert counted(seen, 0, 0, T0 + timedelta(seconds=2)) == seen


class _Cluster:
    """Only what a reconcile of a vanished resource reads."""

    def __init__(self) -> None:
        self.reads = 0

    def get_model_deployment(self, namespace: str, name: str) -> None:
        self.reads += 1


def test_a_requeue_reconciles_again_and_is_dropped_when_the_resource_is_gone() -> None:
    cluster = _Cluster()
    context = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeAdapter, cluster),
        metrics=OperatorMetrics(),
        prometheus=cast(MetricsSource, object()),
    )

    async def scenario() -> None:
        context.start_workers()
        context.known.add(("ns", "md"))
        context.requeue("ns", "md", 0.01)
        context.requeue("ns", "md", 0.01)  # replaces the first: one timer per resource
        assert len(context.requeues) == 1
        for _ in range(500):
            if cluster.reads and ("ns", "md") not in context.known:
                break
            await asyncio.sleep(0.01)
        context.stop_workers()

    asyncio.run(scenario())
    assert cluster.reads == 1
    assert ("ns", "md") not in context.known and not context.requeues


def test_a_new_resource_is_due_at_once_and_its_childrens_burst_after_the_debounce() -> None:
    """A user's change is acted on at once; the controllers' answers are gathered."""
    import kopf

    from rollforward.handlers import register_handlers

    context = OperatorContext(
        settings=OperatorSettings(debounce_seconds=0.5),
        kube=cast(KubeAdapter, _Cluster()),
        metrics=OperatorMetrics(),
        prometheus=cast(MetricsSource, object()),
    )
    registry = kopf.OperatorRegistry()
    register_handlers(registry, context)
    handlers: dict[str, Any] = {
        str(h.selector.any_name if h.selector else ""): h.fn
        for h in registry._watching.get_all_handlers()
    }
    meta = {"namespace": "ns", "resourceVersion": "1"}

    async def scenario() -> tuple[float | None, float | None, float]:
        now = asyncio.get_running_loop().time()
        md = {"metadata": {**meta, "name": "md"}}
        await handlers["modeldeployments"](
            type="ADDED", event={"object": md}, namespace="ns", name="md"
        )
        new_resource = context.queue.next_due()
        context.queue.forget(("ns", "md"))
        labels = {"rollforward.io/model-deployment": "md"}
        child = {"metadata": {**meta, "name": "md-champion", "labels": labels}}
        await handlers["deployments"](
            type="MODIFIED", event={"object": child}, namespace="ns", name="md-champion"
        )
        return new_resource, context.queue.next_due(), now

    new_resource, child_burst, now = asyncio.run(scenario())
    assert new_resource is not None and new_resource - now < 0.1
    assert child_burst is not None and child_burst - now >= 0.5
