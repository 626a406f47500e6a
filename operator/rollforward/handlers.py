"""kopf handlers. Each is a few lines that hand off to the one level-based reconcile.

Create, update, resume, a periodic timer and events of our own children all run the same
reconcile, serialised per ModelDeployment by a lock, on a fresh read of the resource (a
kopf body can be older than our own last status write, and progress must never go back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from rollforward.api import GROUP, PLURAL, VERSION
from rollforward.kube import KubeAdapter
from rollforward.metrics import OperatorMetrics
from rollforward.naming import LABEL_MANAGED_BY, LABEL_MODEL_DEPLOYMENT, MANAGED_BY
from rollforward.prometheus import MetricsSource
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
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((namespace, name), asyncio.Lock())

    async def reconcile(self, namespace: str, name: str) -> ReconcileResult | None:
        async with self.lock(namespace, name):
            body = await asyncio.to_thread(self.kube.get_model_deployment, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                self.locks.pop((namespace, name), None)
                return None
            with self.metrics.reconcile_seconds.time():
                try:
                    result = await asyncio.to_thread(
                        reconcile, body, self.kube, self.prometheus, self.settings, utc_now
                    )
                except Exception:
                    self.metrics.reconciles.labels(result="error").inc()
                    raise
            self.metrics.reconciles.labels(result="ok").inc()
            self._export_drift(namespace, name, result)
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


def register_handlers(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Register every handler on `registry` (no import-time global registration)."""
    settings = context.settings

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's own bookkeeping goes to our annotations, never into the user's status.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        # Handler logs as Events would write on every resync; we post our own Events.
        settings.posting.enabled = False
        settings.execution.max_workers = context.settings.workers
        settings.watching.server_timeout = 300

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    async def on_change(namespace: str | None, name: str, **_: Any) -> None:
        await context.reconcile(namespace or "default", name)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=settings.resync_seconds, registry=registry)
    async def on_timer(namespace: str | None, name: str, **_: Any) -> None:
        await context.reconcile(namespace or "default", name)

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
