"""kopf handlers. Each is a few lines that hand off to the one level-based reconcile.

Every watch event of a ModelDeployment (the initial listing included, which covers resume),
events of our own children, and a periodic resync all run the same reconcile, serialised
per ModelDeployment by a lock, on a fresh read of the resource (a kopf body can be older
than our own last status write, and progress must never go back).

Only event handlers are used, on purpose: kopf's change handlers write their bookkeeping
into the user's object, and its timers put a finalizer on it, which would block deleting a
ModelDeployment (or its namespace) whenever the operator is not running. Children are
cleaned up by owner references, so the operator needs no finalizer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from rollforward.api import GROUP, PLURAL, VERSION
from rollforward.bentostore.gateway import StoreGateway
from rollforward.kube import KubeAdapter
from rollforward.metrics import OperatorMetrics
from rollforward.naming import LABEL_MANAGED_BY, LABEL_MODEL_DEPLOYMENT, MANAGED_BY
from rollforward.ports import MetricsSource
from rollforward.reconcile import ReconcileResult, reconcile
from rollforward.settings import OperatorSettings

log = logging.getLogger(__name__)

_CHILD_RESOURCES = [("apps", "v1", "deployments"), ("batch", "v1", "jobs")]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OperatorContext:
    """What every handler shares: settings, the API adapter, and one lock per resource."""

    settings: OperatorSettings
    kube: KubeAdapter
    metrics: OperatorMetrics
    prometheus: MetricsSource
    stores: StoreGateway | None = None
    """The bento stores' client (None: the operator never reaches a store, as in unit tests)."""
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    waiting: set[tuple[str, str]] = field(default_factory=set)
    """Resources with a reconcile queued on their lock: a burst of events needs only one."""
    known: set[tuple[str, str]] = field(default_factory=set)
    """ModelDeployments seen by the watch; the resync visits them (a cache, not state)."""
    resync_task: asyncio.Task[None] | None = None
    requeues: dict[tuple[str, str], asyncio.TimerHandle] = field(default_factory=dict)
    """The next look of each running canary (one pending timer per resource)."""
    requeued: set[asyncio.Task[ReconcileResult | None]] = field(default_factory=set)
    """Requeued reconciles under way (kept referenced until they finish)."""

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((namespace, name), asyncio.Lock())

    def forget(self, namespace: str, name: str) -> None:
        self.known.discard((namespace, name))
        self.locks.pop((namespace, name), None)
        timer = self.requeues.pop((namespace, name), None)
        if timer is not None:
            timer.cancel()

    def requeue(self, namespace: str, name: str, delay: float) -> None:
        """Reconcile again after `delay` seconds: a running canary is looked at every
        analysis interval, far more often than the resync."""
        key = (namespace, name)
        previous = self.requeues.pop(key, None)
        if previous is not None:
            previous.cancel()
        self.requeues[key] = asyncio.get_running_loop().call_later(
            delay, self._start_requeued, namespace, name
        )

    def _start_requeued(self, namespace: str, name: str) -> None:
        self.requeues.pop((namespace, name), None)
        task = asyncio.create_task(self._requeued(namespace, name))
        self.requeued.add(task)
        task.add_done_callback(self.requeued.discard)

    async def _requeued(self, namespace: str, name: str) -> ReconcileResult | None:
        try:
            return await self.reconcile(namespace, name)
        except Exception:  # the next event or resync retries; the timer must not die loudly
            log.exception("requeued reconcile of %s/%s failed", namespace, name)
            return None

    async def resync_forever(self) -> None:
        """Reconcile every known ModelDeployment once per resync period, a few at a time."""
        limit = asyncio.Semaphore(self.settings.workers)

        async def one(namespace: str, name: str) -> None:
            async with limit:
                try:
                    await self.reconcile(namespace, name)
                except Exception:  # one resource's failure must not stop the others' resync
                    log.exception("resync of %s/%s failed", namespace, name)

        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            await asyncio.gather(*(one(ns, name) for ns, name in sorted(self.known)))

    async def reconcile(self, namespace: str, name: str) -> ReconcileResult | None:
        key = (namespace, name)
        if key in self.waiting:
            # A queued reconcile reads the resource after it gets the lock, so it sees
            # everything this event announced: one more would only repeat it.
            return None
        self.waiting.add(key)
        try:
            return await self._reconcile_locked(namespace, name)
        finally:
            self.waiting.discard(key)

    async def _reconcile_locked(self, namespace: str, name: str) -> ReconcileResult | None:
        async with self.lock(namespace, name):
            self.waiting.discard((namespace, name))
            body = await asyncio.to_thread(self.kube.get_model_deployment, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                self.forget(namespace, name)
                return None
            with self.metrics.reconcile_seconds.time():
                try:
                    result = await asyncio.to_thread(
                        reconcile,
                        body,
                        self.kube,
                        self.prometheus,
                        self.settings,
                        utc_now,
                        self.stores,
                    )
                except Exception:
                    self.metrics.reconciles.labels(result="error").inc()
                    raise
            self.metrics.reconciles.labels(result="ok").inc()
            self._export_drift(namespace, name, result)
            if result.requeue_after is not None:
                self.requeue(namespace, name, result.requeue_after)
            return result

    def _export_drift(self, namespace: str, name: str, result: ReconcileResult) -> None:
        report = result.status.drift if result.status is not None else None
        if report is None or result.status is None:
            return
        if (
            report.checked_at == result.status.drift_tracking.last_check_at
            and result.status_written
        ):
            self.metrics.drift_checks.labels(outcome=report.outcome.value).inc()
        if report.score is not None:
            self.metrics.drift_score.labels(
                namespace=namespace, name=name, statistic=report.statistic
            ).set(report.score)
        if report.effect is not None:
            effect = report.effect
            bounds = {
                "estimate": effect.estimate,
                "lower": effect.lower,
                "upper": effect.upper,
                "minimum": effect.minimum,
            }
            for bound, value in bounds.items():
                self.metrics.drift_effect.labels(namespace=namespace, name=name, bound=bound).set(
                    value
                )


def register_handlers(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Register every handler on `registry` (no import-time global registration)."""

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Handler logs as Events would write on every resync; we post our own Events.
        settings.posting.enabled = False
        settings.execution.max_workers = context.settings.workers
        # Reconciles run in the loop's default executor (asyncio.to_thread); size it here so
        # ROLLFORWARD_WORKERS bounds them, not asyncio's default of cpus + 4.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=context.settings.workers, thread_name_prefix="reconcile")
        )
        settings.watching.server_timeout = 300
        context.resync_task = asyncio.create_task(context.resync_forever())

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(**_: Any) -> None:
        if context.resync_task is not None:
            context.resync_task.cancel()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def on_model_deployment(
        type: str | None, namespace: str | None, name: str | None, **_: Any
    ) -> None:
        if namespace is None or name is None:
            return
        if type == "DELETED":
            context.forget(namespace, name)
            return
        context.known.add((namespace, name))
        await context.reconcile(namespace, name)

    for group, version, plural in _CHILD_RESOURCES:

        @kopf.on.event(
            group, version, plural, labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry
        )
        async def on_child(
            namespace: str | None, labels: Mapping[str, str], type: str | None, **_: Any
        ) -> None:
            owner = labels.get(LABEL_MODEL_DEPLOYMENT)
            if owner and namespace and type is not None:  # None: initial listing (see resume)
                await context.reconcile(namespace, owner)
