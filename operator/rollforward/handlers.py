"""kopf handlers. Each is a few lines that hand off to the one level-based reconcile.

Every watch event of a ModelDeployment (the initial listing included, which covers resume),
events of our own children, and a periodic resync all queue the same reconcile. The watches
also feed a cache (rollforward.kube_cache), so a steady reconcile reads nothing from the API
server; the queue (rollforward.workqueue) debounces a burst of child events into one reconcile
per resource, acts on a change of a ModelDeployment at once, never runs two of one resource at
once, and serves resources first come first served, so a flood on one resource delays no other.

Only event handlers are used, on purpose: kopf's change handlers write their bookkeeping
into the user's object, and its timers put a finalizer on it, which would block deleting a
ModelDeployment (or its namespace) whenever the operator is not running. Children are
cleaned up by owner references, so the operator needs no finalizer. kopf's own indexes
(`@kopf.index`) are not used for the cache: the reconcile runs in worker threads outside any
handler, must see its own writes before the watch echoes them, and needs the cache pruned by
a relist when a watch restarts; kopf's indexes offer none of the three.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from rollforward.api import GROUP, KIND, PLURAL, VERSION
from rollforward.bentostore.gateway import StoreGateway
from rollforward.kube import KubeAdapter
from rollforward.kube_cache import CachedCluster
from rollforward.metrics import OperatorMetrics
from rollforward.naming import LABEL_MANAGED_BY, LABEL_MODEL_DEPLOYMENT, MANAGED_BY
from rollforward.observed import Manifest
from rollforward.ports import MetricsSource
from rollforward.reconcile import ReconcileResult, reconcile
from rollforward.settings import OperatorSettings
from rollforward.workqueue import DebounceQueue

log = logging.getLogger(__name__)

_CHILD_RESOURCES = [
    ("apps", "v1", "deployments", "Deployment"),
    ("", "v1", "services", "Service"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("batch", "v1", "jobs", "Job"),
]
_RELIST_AT_MOST_EVERY = 30.0
"""Seconds: a watch restart asks for a relist, but many restarting at once need only one."""

Key = tuple[str, str]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OperatorContext:
    """What every handler shares: settings, the API adapter and its cache, and the queue."""

    settings: OperatorSettings
    kube: KubeAdapter
    metrics: OperatorMetrics
    prometheus: MetricsSource
    stores: StoreGateway | None = None
    """The bento stores' client (None: the operator never reaches a store, as in unit tests)."""
    namespaces: list[str] | None = None
    """The namespaces watched (None: all), which a relist of the cache covers."""
    known: set[Key] = field(default_factory=set)
    """ModelDeployments seen by the watch (in this replica's shard); the resync visits them."""
    resync_task: asyncio.Task[None] | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    requeues: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    """The next look of each running canary (one pending timer per resource)."""
    relisted_at: float | None = None
    relist_task: asyncio.Task[None] | None = None
    cluster: CachedCluster = field(init=False)
    queue: DebounceQueue[Key] = field(init=False)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.cluster = CachedCluster(self.kube, self.namespaces)
        self.queue = DebounceQueue(self.settings.debounce_seconds)

    def owns(self, namespace: str, name: str) -> bool:
        return self.settings.owned_shard.owns(namespace, name)

    def enqueue(
        self, namespace: str, name: str, delay: float | None = None, leading: bool = False
    ) -> None:
        """Queue a reconcile; `leading`: the resource itself changed (see rollforward.workqueue)."""
        if not self.owns(namespace, name):
            return
        self.queue.add((namespace, name), asyncio.get_running_loop().time(), delay, leading)
        self.wake.set()

    def forget(self, namespace: str, name: str) -> None:
        self.known.discard((namespace, name))
        self.queue.forget((namespace, name))
        self.cluster.forget(namespace, name)
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
            delay, self._requeue_due, namespace, name
        )

    def _requeue_due(self, namespace: str, name: str) -> None:
        self.requeues.pop((namespace, name), None)
        self.enqueue(namespace, name, 0.0)

    def start_workers(self) -> None:
        self.workers = [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]

    def stop_workers(self) -> None:
        for task in self.workers:
            task.cancel()

    async def _next(self) -> Key:
        loop = asyncio.get_running_loop()
        while True:
            key = self.queue.take(loop.time())
            if key is not None:
                return key
            self.wake.clear()
            due = self.queue.next_due()
            timeout = None if due is None else max(0.0, due - loop.time())
            with contextlib.suppress(TimeoutError):  # a key fell due: take it
                await asyncio.wait_for(self.wake.wait(), timeout)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self._next()
            try:
                await self.reconcile_now(*key)
            except Exception:  # the next event or resync retries; the worker must go on
                log.exception("reconcile of %s/%s failed", *key)
            finally:
                self.queue.done(key, loop.time())
                self.wake.set()

    async def relist(self) -> None:
        """Rebuild the cache from fresh lists; reconcile whatever it found changed."""
        self.relisted_at = time.monotonic()
        try:
            changed = await asyncio.to_thread(self.cluster.relist)
        except Exception:  # the watches keep the cache; the next relist tries again
            log.exception("rebuilding the cache failed")
            return
        for namespace, name in changed:
            self.enqueue(namespace, name)

    def relist_soon(self) -> None:
        """A watch was restarted (kopf lists again): deletions in the gap are unknown."""
        recent = (
            self.relisted_at is not None
            and time.monotonic() - self.relisted_at < _RELIST_AT_MOST_EVERY
        )
        if recent or (self.relist_task is not None and not self.relist_task.done()):
            return
        self.relist_task = asyncio.create_task(self.relist())

    async def resync_forever(self) -> None:
        """Queue every known ModelDeployment once per resync period, spread over the period
        so the resync never stands in line before fresh events."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            stale = self.relisted_at is None or (
                time.monotonic() - self.relisted_at >= self.settings.relist_seconds
            )
            if stale:
                await self.relist()
            keys = sorted(self.known)
            for index, (namespace, name) in enumerate(keys):
                spread = self.settings.resync_seconds * index / max(1, len(keys))
                self.enqueue(namespace, name, spread)

    async def reconcile(self, namespace: str, name: str) -> ReconcileResult | None:
        """Reconcile one resource now (tests, and the CLI's one-shot paths)."""
        return await self.reconcile_now(namespace, name)

    async def reconcile_now(self, namespace: str, name: str) -> ReconcileResult | None:
        body = await asyncio.to_thread(self.cluster.model_deployment, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.forget(namespace, name)
            return None
        with self.metrics.reconcile_seconds.time():
            try:
                result = await asyncio.to_thread(
                    reconcile,
                    body,
                    self.cluster,
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
        # Fill the cache before the first reconcile, so none of them takes an existing child
        # for a missing one; the watches keep it current from here.
        await context.relist()
        context.start_workers()
        context.resync_task = asyncio.create_task(context.resync_forever())

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(**_: Any) -> None:
        # A relist left running would hold kopf's stop for its grace period of hung tasks.
        for task in (context.resync_task, context.relist_task):
            if task is not None:
                task.cancel()
        context.stop_workers()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def on_model_deployment(
        type: str | None,
        event: kopf.RawEvent,
        namespace: str | None,
        name: str | None,
        **_: Any,
    ) -> None:
        if namespace is None or name is None or not context.owns(namespace, name):
            return
        if type == "DELETED":
            context.forget(namespace, name)
            return
        context.known.add((namespace, name))
        news = context.cluster.cache.upsert(KIND, cast(Manifest, event["object"]))
        # The listing (type None) reconciles everything once (resume); later, only news
        # does: the echo of our own status write changes nothing.
        if news or type is None:
            context.enqueue(namespace, name, leading=True)

    for group, version, plural, kind in _CHILD_RESOURCES:
        _register_child(registry, context, group, version, plural, kind)


def _register_child(
    registry: kopf.OperatorRegistry,
    context: OperatorContext,
    group: str,
    version: str,
    plural: str,
    kind: str,
) -> None:
    @kopf.on.event(group, version, plural, labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
    async def on_child(
        type: str | None, event: kopf.RawEvent, namespace: str | None, name: str | None, **_: Any
    ) -> None:
        if namespace is None or name is None:
            return
        body = cast(Manifest, event["object"])
        owner = ((body.get("metadata") or {}).get("labels") or {}).get(LABEL_MODEL_DEPLOYMENT)
        if type == "DELETED":
            context.cluster.cache.remove(kind, namespace, name)
            news = True
        else:
            news = context.cluster.cache.upsert(kind, body)
        if type is None:  # kopf listed again: its watch restarted, deletions may be missed
            context.relist_soon()
        if owner and news:
            context.enqueue(namespace, owner)
