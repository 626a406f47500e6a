"""A clean stop logs no ERROR: the async generators kopf leaves open are closed outer first.

The shape is kopf's watch stream: an async generator (`infinite_watch`) suspended at a yield,
inside an `async with` over another async generator (`streaming_block`) whose exit awaits a
cancelled future, left open because its consumer's task was cancelled between two events.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from rollforward.operator_main import run

pytestmark = pytest.mark.unit

SHUTDOWN_ERROR = "an error occurred during closing of asynchronous generator"


@contextlib.asynccontextmanager
async def streaming_block() -> AsyncIterator[asyncio.Future[None]]:
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        yield waiter
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


async def infinite_watch() -> AsyncIterator[int]:
    while True:
        async with streaming_block():
            while True:
                yield 1
                await asyncio.sleep(0)


async def operator(streams: list[AsyncIterator[int]], closed: list[bool]) -> None:
    """Watchers cancelled while they hand an event on, as kopf's are at a SIGTERM."""

    async def watcher() -> None:
        stream = infinite_watch()
        streams.append(stream)  # still referenced at the end, as kopf's tasks keep theirs
        async for _ in stream:
            await asyncio.sleep(3600)

    tasks = [asyncio.create_task(watcher()) for _ in range(5)]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    closed.append(True)


async def watch_awaiting_the_server() -> AsyncIterator[int]:
    while True:
        async with streaming_block():
            while True:
                yield 1
                await asyncio.sleep(3600)


async def operator_leaving_watchers_running(
    streams: list[AsyncIterator[int]], closed: list[bool]
) -> None:
    """Watchers still waiting inside their stream (mid-step) when the operator returns: the
    runner cancels them, as `asyncio.run` would."""

    async def watcher() -> None:
        stream = watch_awaiting_the_server()
        streams.append(stream)
        async for _ in stream:
            pass

    running = [asyncio.create_task(watcher()) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in running)
    closed.append(True)


Operator = Callable[[list[AsyncIterator[int]], list[bool]], Coroutine[Any, Any, None]]


def shutdown_errors(
    runner: Callable[[Coroutine[Any, Any, None]], object],
    caplog: pytest.LogCaptureFixture,
    stopping: Operator = operator,
) -> list[str]:
    streams: list[AsyncIterator[int]] = []
    closed: list[bool] = []
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        runner(stopping(streams, closed))
        gc.collect()
    assert closed == [True]
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_stop_with_watch_streams_left_open_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert shutdown_errors(run, caplog) == []


def test_a_stop_with_watchers_still_inside_their_streams_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Closing the inner generator under a live watcher made its cancellation fail with
    "generator didn't stop after athrow()", as one SIGTERM stop in a soak run logged."""
    assert shutdown_errors(run, caplog, operator_leaving_watchers_running) == []


def test_asyncio_run_alone_logs_the_error_on_the_same_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What kopf.run did: the case above is the one that failed."""
    errors = shutdown_errors(asyncio.run, caplog)
    assert any(SHUTDOWN_ERROR in message for message in errors), errors
