"""When a canary step is looked at, over which window, and what the candidate has cost. Pure.

A running step is looked at every `spec.rollout.analysis.interval`, at instants aligned to
that interval (so canaries with the same interval share the batched queries), over the
counts since the step started: the sequential error-rate test wants cumulative counts. The
blast radius counts from the moment the candidate started serving, across steps.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from rollforward.api import BlastRadius, ModelDeployment, RolloutStatus, duration_seconds

REQUEUE_DELAY = timedelta(milliseconds=250)
"""A look is requeued this long after its tick, so the tick's scrape has landed."""


def interval_seconds(deployment: ModelDeployment) -> int:
    return max(int(duration_seconds(deployment.spec.rollout.analysis.interval)), 1)


def look_tick(deployment: ModelDeployment, now: datetime) -> datetime:
    """The aligned instant a look at `now` evaluates its queries at."""
    interval = interval_seconds(deployment)
    return datetime.fromtimestamp(math.floor(now.timestamp() / interval) * interval, UTC)


def next_look_in(deployment: ModelDeployment, now: datetime) -> float:
    """Seconds until the next look's tick has passed (plus the requeue delay)."""
    interval = interval_seconds(deployment)
    following = look_tick(deployment, now) + timedelta(seconds=interval) + REQUEUE_DELAY
    return max((following - now).total_seconds(), REQUEUE_DELAY.total_seconds())


def requeue_after(deployment: ModelDeployment, now: datetime) -> float | None:
    """When to reconcile again for the next look: while a canary runs and is not held
    (paused, or waiting for an approval); None otherwise (events and the resync suffice)."""
    rollout = deployment.status.rollout
    if rollout is None or rollout.held_reason or rollout.awaiting_approval:
        return None
    return next_look_in(deployment, now)


def _seconds_since(start: datetime | None, tick: datetime) -> int:
    """A window reaching back to `start` (whole seconds, at least 1)."""
    if start is None:
        return 1
    return max(math.ceil((tick - start).total_seconds()), 1)


def step_window_seconds(rollout: RolloutStatus | None, tick: datetime) -> int:
    """Since the current step (or its latest re-measurement) started."""
    return _seconds_since(rollout.step_started_at if rollout else None, tick)


def canary_window_seconds(rollout: RolloutStatus | None, tick: datetime) -> int:
    """Since the candidate started serving (the blast radius's window)."""
    if rollout is None:
        return 1
    return _seconds_since(rollout.serving_since or rollout.step_started_at, tick)


def counted(radius: BlastRadius, requests: int, failed: int, now: datetime) -> BlastRadius:
    """The blast radius after a look that counted `requests` and `failed` since serving.

    Counts never go down: a look that sees fewer (a failed query, a restarted pod's counter
    read as zero) keeps what an earlier look saw."""
    failed_now = max(radius.failed, failed)
    first = radius.first_failure_at or (now if failed_now > 0 else None)
    return radius.model_copy(
        update={
            "requests": max(radius.requests, requests),
            "failed": failed_now,
            "first_failure_at": first,
        }
    )


__all__ = [
    "canary_window_seconds",
    "counted",
    "interval_seconds",
    "look_tick",
    "next_look_in",
    "requeue_after",
    "step_window_seconds",
]
