"""Start the operator: settings from the environment, handlers on a registry, kopf's operator
on an event loop that closes what kopf leaves open when it stops.

kopf stops a watcher by cancelling its task. When the cancellation lands while the watcher
hands an event on (kopf's scheduler yields there once per object without a worker), its watch
stream is left open: an async generator (kopf's `infinite_watch`) suspended at a yield, inside
an `async with` over another async generator (`streaming_block`). `asyncio.run`, which
`kopf.run` uses, closes every async generator still open at the end all at once, in no set
order; when the inner one is closed first, the outer one's `async with` throws into a closed
generator, and asyncio logs "an error occurred during closing of asynchronous generator
<async_generator object infinite_watch ...>" with "RuntimeError: generator didn't stop after
athrow()" at ERROR (once at 1,000 resources). `run` first cancels the tasks kopf leaves
running and waits for them, so no generator is mid-step (closing the inner generator of one
that a live task is stepping makes that task's `async with` fail the same way when it is
cancelled), then closes the generators still open one at a time, in the order they started:
an outer generator starts before any it holds, so it is closed first, and its `async with`
closes the inner one as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import sys
import types
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import kopf

from rollforward.bentostore.gateway import StoreGateway
from rollforward.handlers import OperatorContext, register_handlers
from rollforward.kube import KubeAdapter, load_api_client
from rollforward.metrics import OperatorMetrics
from rollforward.prometheus import PrometheusSource
from rollforward.settings import OperatorSettings

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0
"""How long closing one async generator left open at shutdown may take."""


def run_operator(namespaces: list[str], all_namespaces: bool, shard: str | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = OperatorSettings(shard=shard) if shard else OperatorSettings()
    metrics = OperatorMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    kube = KubeAdapter(load_api_client(), settings.field_manager, metrics)
    context = OperatorContext(
        settings=settings,
        kube=kube,
        metrics=metrics,
        prometheus=PrometheusSource(
            timeout_seconds=settings.prometheus_timeout_seconds,
            retries=settings.prometheus_retries,
            metrics=metrics,
        ),
        stores=StoreGateway(kube.read_secret, settings.bento_store_check_seconds),
        namespaces=None if all_namespaces or not namespaces else namespaces,
    )
    registry = kopf.OperatorRegistry()
    register_handlers(registry, context)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    run(
        kopf.operator(
            registry=registry,
            clusterwide=all_namespaces or not namespaces,
            namespaces=namespaces,
            standalone=settings.peering_name is None,
            peering_name=peering_name(settings),
            priority=_peering_priority(settings),
            liveness_endpoint=liveness,
        )
    )


def run(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)`, closing the async generators left open, outer ones first."""
    with contextlib.suppress(asyncio.CancelledError):  # as kopf.run: a cancelled one stopped
        asyncio.run(_closing_generators(main))


class _StartOrder:
    """The async generators started on this loop, in the order they started (weakly held:
    one that is gone is forgotten)."""

    def __init__(self) -> None:
        self._started: weakref.WeakValueDictionary[int, types.AsyncGeneratorType[Any, Any]] = (
            weakref.WeakValueDictionary()
        )
        self._count = itertools.count()

    def hook(
        self, chained: Callable[[AsyncGenerator[Any, Any]], object] | None
    ) -> Callable[[AsyncGenerator[Any, Any]], None]:
        def firstiter(generator: AsyncGenerator[Any, Any]) -> None:
            if isinstance(generator, types.AsyncGeneratorType):
                self._started[next(self._count)] = generator
            if chained is not None:
                chained(generator)

        return firstiter

    async def close_open(self) -> None:
        for _, generator in sorted(self._started.items()):
            if generator.ag_frame is None or generator.ag_running:
                continue  # finished, or being closed by the generator that holds it
            try:
                await asyncio.wait_for(generator.aclose(), CLOSE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("closing %r at shutdown failed", generator)


async def _closing_generators(main: Coroutine[Any, Any, None]) -> None:
    started = _StartOrder()
    firstiter, finalizer = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=started.hook(firstiter), finalizer=finalizer)
    try:
        await main
    finally:
        await _cancel_other_tasks()
        await started.close_open()


async def _cancel_other_tasks() -> None:
    """What `asyncio.run` does after its main returns, done before the generators close."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=CLOSE_TIMEOUT_SECONDS)


def peering_name(settings: OperatorSettings) -> str | None:
    """Standby replicas take over within their shard only: one peering object per shard."""
    shard = settings.owned_shard
    if settings.peering_name is None or shard.count == 1:
        return settings.peering_name
    return f"{settings.peering_name}-shard-{shard.index}-of-{shard.count}"


def _peering_priority(settings: OperatorSettings) -> int | None:
    if settings.peering_name is None:
        return None
    if settings.peering_priority is not None:
        return settings.peering_priority
    return secrets.randbelow(1_000_000) + 1
